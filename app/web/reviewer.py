"""The reviewer console (``/review``): flagged and unscored answers, transcripts with the
grader's parts and its LLM audit trail, score overrides, and their export to the eval gold set.

A browser signs in with the reviewer token (failed attempts are rate-limited per client); the
cookie it gets is HttpOnly, SameSite=Strict, scoped to ``/review``, signed with the token and
its issue time, and refused after ``reviewer_session_hours``. Scripts send the token as a Bearer
header.
"""

from __future__ import annotations

import hmac
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from pydantic import ValidationError
from starlette.responses import Response

from app.context import ContextDep
from app.db.base import begin_write
from app.deps import BearerDep, SessionDep, SettingsDep, require_reviewer
from app.errors import Forbidden, InvalidInput, NotFound
from app.interview.models import InterviewSession, Turn
from app.review import service
from app.review.console import Filters, known_topics, latest_overrides, override_counts, search_sessions, search_turns
from app.review.export import gold_lines
from app.review.schemas import OverrideIn
from app.statuses import TurnStatus
from app.web.common import LoginRequired, WebRoute, render, see_other
from app.web.security import (
    REVIEWER_COOKIE,
    CsrfChecked,
    reviewer_cookie_valid,
    reviewer_cookie_value,
    set_cookie,
)

router = APIRouter(prefix="/review", route_class=WebRoute, include_in_schema=False)

DISABLED = "reviewer access is disabled: set MOCKINTERVIEW_REVIEWER_TOKEN"


def web_reviewer(request: Request, credentials: BearerDep, settings: SettingsDep) -> str:
    if settings.reviewer_token is None:
        raise Forbidden(DISABLED)
    if credentials is not None:
        return require_reviewer(credentials, settings)
    if reviewer_cookie_valid(settings, request.cookies.get(REVIEWER_COOKIE, "")):
        return "reviewer"
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    raise LoginRequired(target if request.method == "GET" else "/review")


WebReviewer = Annotated[str, Depends(web_reviewer)]


def _safe_next(value: str) -> str:
    """Only ever back into the console (no open redirect)."""
    if value.startswith("/review") and not value.startswith("//") and "\\" not in value:
        return value
    return "/review"


# ---------------------------------------------------------------------------------- login
@router.get("/login")
def login_page(request: Request, settings: SettingsDep, next: str = "/review") -> Response:
    if settings.reviewer_token is None:
        raise Forbidden(DISABLED)
    return render(request, "review/login.html", {"title": "Reviewer sign-in", "next": _safe_next(next)})


@router.post("/login")
async def login(
    request: Request,
    _: CsrfChecked,
    settings: SettingsDep,
    ctx: ContextDep,
    token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/review",
) -> Response:
    expected = settings.reviewer_token
    if expected is None:
        raise Forbidden(DISABLED)
    client = request.client.host if request.client else "unknown"
    wait = ctx.signin_failures.wait_s(client)
    if wait:
        minutes = max(1, round(wait / 60))
        error = f"Too many failed sign-ins from this address; try again in about {minutes} minute(s)."
        context = {"title": "Reviewer sign-in", "next": _safe_next(next), "error": error}
        refused = render(request, "review/login.html", context, status_code=429)
        refused.headers["Retry-After"] = str(wait)
        return refused
    if not token or not hmac.compare_digest(token.encode(), expected.get_secret_value().encode()):
        ctx.signin_failures.hit(client)
        context = {"title": "Reviewer sign-in", "next": _safe_next(next), "error": "That is not the reviewer token."}
        return render(request, "review/login.html", context, status_code=403)
    response = see_other(_safe_next(next))
    value = reviewer_cookie_value(settings) or ""
    max_age = int(settings.reviewer_session_hours * 3600)
    set_cookie(response, request, REVIEWER_COOKIE, value, max_age=max_age, path="/review", samesite="strict")
    return response


@router.post("/logout")
def logout(request: Request, _: CsrfChecked) -> Response:
    response = see_other("/review/login")
    response.delete_cookie(REVIEWER_COOKIE, path="/review")
    return response


# -------------------------------------------------------------------------------- filters
def _filters(
    flagged: bool = False,
    disagree: bool = False,
    injection: bool = False,
    unscored: bool = False,
    overridden: bool = False,
    topic: str = "",
    date_from: str = "",
    date_to: str = "",
    session: str = "",
) -> Filters:
    def day(value: str, what: str) -> date | None:
        if not value.strip():
            return None
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput(f"{what}: use a date like 2025-01-31") from None

    flags = [f for f, on in (("judge_disagreement", disagree), ("suspected_injection", injection)) if on]
    return Filters(
        flagged=flagged,
        flags=flags,
        unscored=unscored,
        overridden=overridden,
        topic=topic.strip() or None,
        date_from=day(date_from, "from"),
        date_to=day(date_to, "to"),
        session_id=session.strip() or None,
    )


FiltersDep = Annotated[Filters, Depends(_filters)]


def _filter_context(request: Request, db: SessionDep, f: Filters) -> dict[str, Any]:
    return {
        "filters": f,
        "query": request.url.query,
        "topics": known_topics(db),
        "flag_on": {x: x in f.flags for x in ("judge_disagreement", "suspected_injection")},
    }


# --------------------------------------------------------------------------------- pages
@router.get("")
def turns_page(request: Request, _: WebReviewer, db: SessionDep, f: FiltersDep) -> Response:
    turns = search_turns(db, f)
    ids = [t.id for t in turns]
    context = {
        "title": "Reviewer: answers",
        "turns": turns,
        "counts": override_counts(db, ids),
        "latest": latest_overrides(db, ids),
        **_filter_context(request, db, f),
    }
    return render(request, "review/turns.html", context)


@router.get("/sessions")
def sessions_page(request: Request, _: WebReviewer, db: SessionDep, f: FiltersDep) -> Response:
    context = {"title": "Reviewer: sessions", "rows": search_sessions(db, f), **_filter_context(request, db, f)}
    return render(request, "review/sessions.html", context)


@router.get("/sessions/{session_id}")
def session_page(session_id: str, request: Request, _: WebReviewer, db: SessionDep) -> Response:
    session = db.get(InterviewSession, session_id)
    if session is None:
        raise NotFound("session not found")
    ids = [t.id for t in session.turns]
    context = {
        "title": "Reviewer: transcript",
        "session": session,
        "counts": override_counts(db, ids),
        "latest": latest_overrides(db, ids),
        "audits": {t.id: service.audit_of(db, t.id) for t in session.turns if t.status == TurnStatus.answered},
    }
    return render(request, "review/session.html", context)


def _turn_context(db: SessionDep, turn: Turn, **extra: Any) -> dict[str, Any]:
    return {
        "title": "Reviewer: answer",
        "turn": turn,
        "overrides": service.overrides_of(db, turn.id),
        "calls": service.audit_of(db, turn.id),
        **extra,
    }


@router.get("/turns/{turn_id}")
def turn_page(turn_id: str, request: Request, _: WebReviewer, db: SessionDep, saved: bool = False) -> Response:
    turn = service.get_turn(db, turn_id)
    return render(request, "review/turn.html", _turn_context(db, turn, saved=saved))


@router.post("/turns/{turn_id}/override")
def override(
    turn_id: str,
    request: Request,
    _: CsrfChecked,
    __: WebReviewer,
    db: SessionDep,
    score: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    reviewer: Annotated[str, Form()] = "reviewer",
) -> Response:
    begin_write(db)  # reads the turn, then writes the override
    turn = service.get_turn(db, turn_id)
    try:
        body = OverrideIn(
            score=float(score), note=note.replace("\r\n", "\n").strip(), reviewer=reviewer.strip() or "reviewer"
        )
    except (ValueError, ValidationError) as exc:
        message = (
            "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
            if isinstance(exc, ValidationError)
            else "score: enter a number from 0 to 5"
        )
        form = {"score": score, "note": note, "reviewer": reviewer}
        return render(request, "review/turn.html", _turn_context(db, turn, error=message, form=form), status_code=422)
    service.override(db, turn, body)
    return see_other(f"/review/turns/{turn.id}?saved=1#overrides")


@router.get("/export")
def export_page(request: Request, _: WebReviewer, db: SessionDep, history: bool = False) -> Response:
    export = gold_lines(db, history=history)
    context = {"title": "Reviewer: export", "export": export, "history": history, "jsonl": export.jsonl()}
    return render(request, "review/export.html", context)


@router.get("/export/gold.jsonl")
def export_file(_: WebReviewer, db: SessionDep, history: bool = False) -> Response:
    body = gold_lines(db, history=history).jsonl()
    return Response(
        body,
        media_type="application/x-ndjson; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="gold-reviewer-overrides.jsonl"'},
    )
