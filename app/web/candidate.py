"""The candidate's pages: start, the interview, the report (with exports and share links), progress.

Every page works as plain HTML forms (full-page posts and redirects); ``static/app.js``
enhances them with ``fetch`` (sent with ``Accept: application/json``), in which case the
action endpoints answer JSON with server-rendered HTML fragments. State-changing requests
carry the CSRF token (see :mod:`app.web.security`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Header, Request, UploadFile
from pydantic import ValidationError
from starlette.responses import JSONResponse, Response

from app.config import Settings
from app.context import AppContext, ContextDep
from app.db.base import in_thread
from app.deps import BearerDep, SessionDep, bearer_token
from app.errors import AppError, Conflict, InvalidInput, NotFound, Unauthorized
from app.interview.deps import InterviewsDep, TranscriberDep
from app.interview.models import InterviewSession
from app.interview.progress import candidate_by_token, progress_of, sessions_of
from app.interview.schemas import AnswerIn, SessionStart
from app.interview.service import IDK_ANSWER, InterviewService
from app.interview.share import create_share_token, revoke_share, shared_session
from app.interview.voice import transcribe_answer
from app.reports.export import report_json, report_markdown, report_pdf, rubric_summary
from app.reports.schemas import Report
from app.statuses import SessionMode, SessionStatus, TurnGradingStatus
from app.web.charts import score_lines, topic_bars
from app.web.common import WebRoute, render, render_fragment, see_other, wants_json
from app.web.security import (
    CANDIDATE_COOKIE,
    CANDIDATE_COOKIE_MAX_AGE,
    SESSION_COOKIE_MAX_AGE,
    CsrfChecked,
    csrf_token,
    session_cookie_name,
    set_cookie,
)
from app.web.views import SessionView, session_view, turn_view

router = APIRouter(route_class=WebRoute, include_in_schema=False)

NOTICES = {
    "ungraded": "Your answer is saved but could not be graded now; it will be graded later.",
    "skipped": "Question skipped.",
    "replay": "That answer was already recorded; nothing was changed.",
    "revoked": "The share link is revoked: it no longer opens the report.",
}
NOT_FOUND = "session not found (it does not exist, or it was started in another browser)"


def _validation_text(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


# --------------------------------------------------------------------------- dependencies
def web_session(
    session_id: str, request: Request, credentials: BearerDep, db: SessionDep, ctx: ContextDep
) -> InterviewSession:
    """The session the browser's cookie (or a script's Bearer token) opens. A missing or wrong
    token looks exactly like an unknown session: nobody learns which ids exist."""
    try:
        token = bearer_token(request, credentials, cookie_name=session_cookie_name(session_id))
        return ctx.interviews.authenticate(db, session_id, token)
    except (Unauthorized, NotFound):
        raise NotFound(NOT_FOUND) from None


WebSession = Annotated[InterviewSession, Depends(web_session)]


# ---------------------------------------------------------------------------------- start
def _start_context(ctx: AppContext, db: SessionDep, request: Request, **extra: Any) -> dict[str, Any]:
    bank = ctx.bank
    settings: Settings = ctx.settings
    candidate = candidate_by_token(db, request.cookies.get(CANDIDATE_COOKIE))
    active = (
        [s for s in sessions_of(db, candidate) if s.status == SessionStatus.active] if candidate is not None else []
    )
    tracks = bank.tracks()
    form: dict[str, Any] = {
        "track": "mlops" if "mlops" in tracks else (tracks[0] if tracks else ""),
        "topics": [],
        "difficulty": "adaptive",
        "num_questions": settings.default_num_questions,
        "mode": "practice",
        "candidate_name": "",
    }
    form.update(extra.pop("form", {}))
    return {
        "tracks": [(t, bank.topics(t)) for t in tracks],
        "form": form,
        "active": [s for s in active if request.cookies.get(session_cookie_name(s.id))],
        **extra,
    }


@router.get("/")
def start_page(request: Request, db: SessionDep, ctx: ContextDep) -> Response:
    return render(request, "start.html", _start_context(ctx, db, request))


@router.post("/sessions")
def start_session(
    request: Request,
    _: CsrfChecked,
    db: SessionDep,
    ctx: ContextDep,
    track: Annotated[str, Form()] = "",
    topics: Annotated[list[str] | None, Form()] = None,
    difficulty: Annotated[str, Form()] = "adaptive",
    num_questions: Annotated[str, Form()] = "",
    mode: Annotated[str, Form()] = "practice",
    candidate_name: Annotated[str, Form()] = "",
) -> Response:
    form = {
        "track": track,
        "topics": topics or [],
        "difficulty": difficulty,
        "num_questions": num_questions,
        "mode": mode,
        "candidate_name": candidate_name,
    }
    try:
        params = SessionStart(
            track=track,
            topics=[t for t in (topics or []) if t],
            difficulty=difficulty,
            num_questions=int(num_questions) if num_questions.strip() else ctx.settings.default_num_questions,
            mode=mode,
            candidate_name=candidate_name.strip() or None,
        )
        started = ctx.interviews.start(db, params, request.cookies.get(CANDIDATE_COOKIE))
    except ValueError as exc:  # pydantic's ValidationError and int() both
        message = _validation_text(exc) if isinstance(exc, ValidationError) else "number of questions: enter a number"
        db.rollback()
        return render(
            request, "start.html", _start_context(ctx, db, request, form=form, error=message), status_code=422
        )
    except AppError as exc:
        db.rollback()
        return render(
            request,
            "start.html",
            _start_context(ctx, db, request, form=form, error=exc.message),
            status_code=exc.status_code,
        )
    response = see_other(f"/sessions/{started.session.id}")
    set_cookie(
        response, request, session_cookie_name(started.session.id), started.token, max_age=SESSION_COOKIE_MAX_AGE
    )
    set_cookie(response, request, CANDIDATE_COOKIE, started.candidate_token, max_age=CANDIDATE_COOKIE_MAX_AGE)
    return response


# ------------------------------------------------------------------------------ interview
def _render_session(
    request: Request,
    interviews: InterviewService,
    session: InterviewSession,
    error: str | None = None,
    draft: str = "",
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    view = session_view(interviews, session)
    return render(
        request,
        "session.html",
        {
            "view": view,
            "error": error,
            "draft": draft,
            "notice": NOTICES.get(notice or ""),
            "title": "Interview",
            "transcription": bool(interviews.settings.transcription_model),
        },
        status_code=status_code,
    )


@router.get("/sessions/{session_id}")
async def session_page(
    request: Request, session: WebSession, db: SessionDep, interviews: InterviewsDep, notice: str | None = None
) -> Response:
    # A session left with nothing to answer by a server that stopped while grading moves on
    # here (at once if that server is gone; a live one is left to finish).
    await interviews.resume(db, session)
    return await in_thread(_render_session, request, interviews, session, None, "", notice)


def _announce(view: SessionView, answered_id: str | None) -> str:
    parts = []
    done = next((t for t in view.turns if t.id == answered_id), None)
    if done is not None:
        if done.kind == "skipped":
            parts.append("Question skipped.")
        elif done.feedback is not None and done.feedback.score is not None:
            passed = "pass" if done.feedback.result.passed else "below the pass mark"
            parts.append(f"Graded: {done.feedback.score:.1f} out of 5, {passed}.")
        elif done.pending:
            parts.append("Answer saved; it could not be graded now and will be graded later.")
        else:
            parts.append("Answer recorded.")
    if view.current is not None:
        parts.append(f"Next: {view.current.label}: {view.current.text}")
    elif view.finished:
        parts.append("The interview is finished. Your report is ready.")
    return " ".join(parts)


def _action_done(
    request: Request, interviews: InterviewService, session: InterviewSession, turn_id: str | None, notice: str = ""
) -> Response:
    if not wants_json(request):
        anchor = f"#turn-{turn_id}" if turn_id and session.mode == SessionMode.practice else "#current"
        query = f"?notice={notice}" if notice else ""
        return see_other(f"/sessions/{session.id}{query}{anchor}")
    view = session_view(interviews, session)
    ctx = {"view": view, "csrf_token": csrf_token(request)}
    current = view.current
    return JSONResponse(
        {
            "finished": view.finished,
            "transcript_html": render_fragment(request, "_transcript.html", ctx),
            "question_html": render_fragment(request, "_question.html", ctx),
            "turn_id": current.turn_id if current else None,
            "elapsed_s": current.elapsed_s if current else 0,
            "hints_left": current.hints_left if current else 0,
            "announce": _announce(view, turn_id),
            "notice": NOTICES.get(notice, ""),
            "report_url": f"/sessions/{session.id}/report",
            "main_done": view.main_done,
            "total": session.num_questions,
        }
    )


def _action_error(
    request: Request,
    db: SessionDep,
    interviews: InterviewService,
    session: InterviewSession,
    exc: AppError,
    draft: str = "",
) -> Response:
    db.rollback()
    if wants_json(request):
        return JSONResponse({"detail": exc.message}, status_code=exc.status_code)
    return _render_session(request, interviews, session, exc.message, draft, status_code=exc.status_code)


@router.post("/sessions/{session_id}/answer")
async def answer(
    request: Request,
    _: CsrfChecked,
    session: WebSession,
    db: SessionDep,
    interviews: InterviewsDep,
    turn_id: Annotated[str, Form()] = "",
    answer: Annotated[str, Form()] = "",
    idempotency_key: Annotated[str, Form()] = "",
) -> Response:
    text = answer.replace("\r\n", "\n")  # browsers send CRLF; count and keep what was typed
    try:
        body = AnswerIn(turn_id=turn_id, answer=text, idempotency_key=idempotency_key or None)
        out = await interviews.answer(db, session, body.turn_id, body.answer, body.idempotency_key)
    except ValidationError as exc:
        error: AppError = InvalidInput(_validation_text(exc))
        return await in_thread(_action_error, request, db, interviews, session, error, text)
    except AppError as exc:
        return await in_thread(_action_error, request, db, interviews, session, exc, text)
    ungraded = out.turn.grading_status == TurnGradingStatus.ungraded
    notice = "replay" if out.replay else ("ungraded" if ungraded else "")
    # Rendered here, not in a worker thread: the last step's transaction is still open (the
    # request's dependency commits it), and everything shown is already loaded.
    return _action_done(request, interviews, session, body.turn_id, notice)


@router.post("/sessions/{session_id}/dont-know")
async def dont_know(
    request: Request,
    _: CsrfChecked,
    session: WebSession,
    db: SessionDep,
    interviews: InterviewsDep,
    turn_id: Annotated[str, Form()] = "",
) -> Response:
    try:
        await interviews.answer(db, session, turn_id, IDK_ANSWER)
    except AppError as exc:
        return await in_thread(_action_error, request, db, interviews, session, exc)
    return _action_done(request, interviews, session, turn_id)


@router.post("/sessions/{session_id}/skip")
def skip(
    request: Request,
    _: CsrfChecked,
    session: WebSession,
    db: SessionDep,
    ctx: ContextDep,
    turn_id: Annotated[str, Form()] = "",
) -> Response:
    interviews = ctx.interviews
    try:
        interviews.skip(db, session, turn_id)
    except AppError as exc:
        return _action_error(request, db, interviews, session, exc)
    return _action_done(request, interviews, session, turn_id, "" if wants_json(request) else "skipped")


@router.post("/sessions/{session_id}/transcribe")
async def transcribe(
    _: CsrfChecked, session: WebSession, transcriber: TranscriberDep, audio: UploadFile
) -> JSONResponse:
    """The page's "Record audio": the recording as text, for the answer box."""
    return JSONResponse({"text": await transcribe_answer(transcriber, session, audio)})


@router.post("/sessions/{session_id}/hint")
def hint(
    request: Request,
    _: CsrfChecked,
    session: WebSession,
    db: SessionDep,
    ctx: ContextDep,
    turn_id: Annotated[str, Form()] = "",
    answer: Annotated[str, Form()] = "",
) -> Response:
    interviews = ctx.interviews
    draft = answer.replace("\r\n", "\n")
    try:
        _turn, text, left = interviews.hint(db, session, turn_id)
    except AppError as exc:
        return _action_error(request, db, interviews, session, exc, draft)
    if wants_json(request):
        return JSONResponse({"hint": text, "hints_left": left, "announce": f"Hint: {text}"})
    # The page itself (not a redirect), so the answer being written stays in the box.
    return _render_session(request, interviews, session, draft=draft)


@router.post("/sessions/{session_id}/finish")
def finish(request: Request, _: CsrfChecked, session: WebSession, db: SessionDep, ctx: ContextDep) -> Response:
    ctx.interviews.finish(db, session)
    if wants_json(request):
        return JSONResponse({"finished": True, "report_url": f"/sessions/{session.id}/report"})
    return see_other(f"/sessions/{session.id}/report")


@router.get("/sessions/{session_id}/transcript")
def transcript(request: Request, session: WebSession, ctx: ContextDep) -> JSONResponse:
    """The transcript fragment, for the page to refresh while a judge's verdict is on its way."""
    view = session_view(ctx.interviews, session)
    html = render_fragment(request, "_transcript.html", {"view": view, "csrf_token": csrf_token(request)})
    return JSONResponse({"transcript_html": html, "judge_pending": "data-judge-pending" in html})


@router.post("/sessions/{session_id}/continue")
async def continue_session(
    request: Request, _: CsrfChecked, session: WebSession, db: SessionDep, interviews: InterviewsDep
) -> Response:
    """Move on a session whose last answer was kept but whose next question was never asked
    (the server stopped while grading): the same recovery every read of the session does."""
    if await interviews.resume(db, session) is None and interviews.is_stuck(session):
        raise Conflict("your last answer is still being graded; wait a moment and reload")
    return see_other(f"/sessions/{session.id}")


# --------------------------------------------------------------------------------- report
def _report_context(
    interviews: InterviewService, session: InterviewSession, report: Report, **extra: Any
) -> dict[str, Any]:
    strengths, gaps = rubric_summary(report)
    return {
        "title": "Report",
        "session": session,
        "report": report,
        "strengths": strengths,
        "gaps": gaps,
        "chart": topic_bars(report.topic_scores, interviews.bank.titles),
        "transcript": [turn_view(interviews, session, t, practice=True) for t in session.turns],
        **extra,
    }


def _finished_report(db: SessionDep, interviews: InterviewService, session: InterviewSession) -> Report:
    return interviews.finished_report(db, session)  # a report built now is kept by the commit


@router.get("/sessions/{session_id}/report")
def report_page(
    request: Request, session: WebSession, db: SessionDep, ctx: ContextDep, notice: str | None = None
) -> Response:
    interviews = ctx.interviews
    if session.status != SessionStatus.finished:
        return render(request, "report_pending.html", {"session": session, "title": "Report"}, status_code=409)
    report = _finished_report(db, interviews, session)
    context = _report_context(interviews, session, report, shared=False, notice=NOTICES.get(notice or ""))
    return render(request, "report.html", context)


EXPORTS = {"md": "text/markdown; charset=utf-8", "json": "application/json", "pdf": "application/pdf"}


def _export(session: InterviewSession, report: Report, fmt: str) -> Response:
    if fmt not in EXPORTS:
        raise NotFound("no such export; use .md, .json or .pdf")
    body: bytes | str
    if fmt == "md":
        body = report_markdown(report, created_at=session.created_at)
    elif fmt == "json":
        body = report_json(report)
    else:
        body = report_pdf(report, created_at=session.created_at)
    filename = f"mockinterview-report-{session.id[:8]}.{fmt}"
    return Response(
        body, media_type=EXPORTS[fmt], headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


@router.get("/sessions/{session_id}/report.{fmt}")
def report_export(fmt: str, session: WebSession, db: SessionDep, ctx: ContextDep) -> Response:
    return _export(session, _finished_report(db, ctx.interviews, session), fmt)


@router.post("/sessions/{session_id}/share")
def share(request: Request, _: CsrfChecked, session: WebSession, db: SessionDep, ctx: ContextDep) -> Response:
    interviews = ctx.interviews
    report = _finished_report(db, interviews, session)
    token = create_share_token(session)
    url = f"{str(request.base_url).rstrip('/')}/shared/{token}"
    if wants_json(request):
        return JSONResponse({"url": url, "announce": "Share link created."})
    return render(request, "report.html", _report_context(interviews, session, report, shared=False, share_url=url))


@router.post("/sessions/{session_id}/share/revoke")
def unshare(request: Request, _: CsrfChecked, session: WebSession, db: SessionDep) -> Response:
    revoke_share(session)
    return see_other(f"/sessions/{session.id}/report?notice=revoked")


@router.get("/shared/{token}")
def shared_report(token: str, request: Request, db: SessionDep, ctx: ContextDep) -> Response:
    session = shared_session(db, token)
    report = _finished_report(db, ctx.interviews, session)
    context = _report_context(ctx.interviews, session, report, shared=True, share_token=token)
    return render(
        request, "report.html", context, headers={"Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
    )


@router.get("/shared/{token}/report.{fmt}")
def shared_export(token: str, fmt: str, db: SessionDep, ctx: ContextDep) -> Response:
    session = shared_session(db, token)
    response = _export(session, _finished_report(db, ctx.interviews, session), fmt)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


# ------------------------------------------------------------------------------- progress
@router.get("/progress")
def progress_page(
    request: Request,
    db: SessionDep,
    ctx: ContextDep,
    x_candidate_token: Annotated[str | None, Header()] = None,
) -> Response:
    candidate = candidate_by_token(db, x_candidate_token or request.cookies.get(CANDIDATE_COOKIE))
    sessions = sessions_of(db, candidate) if candidate is not None else []
    progress = progress_of(sessions, ctx.bank)
    labels = [p.when.strftime("%d %b") for p in progress.points]
    series = {ctx.bank.topic_title(topic): points for topic, points in progress.series().items()}
    chart = score_lines(series, labels) if progress.topics else None
    return render(
        request,
        "progress.html",
        {"title": "Progress", "progress": progress, "chart": chart, "known": candidate is not None},
    )
