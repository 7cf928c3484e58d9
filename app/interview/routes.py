"""The interview JSON API: ``/api/sessions``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response, UploadFile, status

from app.db.base import in_thread
from app.deps import SessionDep
from app.errors import API_ERRORS
from app.interview.deps import CurrentSession, InterviewsDep, TranscriberDep
from app.interview.models import InterviewSession, Turn
from app.interview.schemas import (
    AnswerIn,
    AnswerOut,
    HintOut,
    SessionOut,
    SessionStart,
    SessionStarted,
    TranscriptOut,
    TurnOut,
    TurnRef,
)
from app.interview.service import IDK_ANSWER, Answered, InterviewService
from app.interview.voice import transcribe_answer
from app.reports.schemas import Report
from app.statuses import SessionMode, SessionStatus, TurnGradingStatus

router = APIRouter(prefix="/api/sessions", tags=["sessions"], responses=API_ERRORS)


def _show_feedback(session: InterviewSession) -> bool:
    return session.mode == SessionMode.practice or session.status == SessionStatus.finished


def turn_out(interviews: InterviewService, session: InterviewSession, turn: Turn) -> TurnOut:
    feedback = _show_feedback(session)
    return TurnOut(
        turn_id=turn.id,
        position=turn.position,
        question_id=turn.question_id,
        question_text=turn.question_text,
        topic=turn.topic,
        difficulty=turn.difficulty,
        is_follow_up=turn.is_follow_up,
        parent_turn_id=turn.parent_turn_id,
        status=turn.status,
        answer=turn.answer_text,
        grading_status=turn.grading_status,
        score=turn.score if feedback else None,
        grading=interviews.grading_of(turn) if feedback else None,
        hints_used=turn.hints_used,
        asked_at=turn.asked_at,
        answered_at=turn.answered_at,
    )


def session_out(interviews: InterviewService, session: InterviewSession) -> SessionOut:
    current = interviews.current_turn(session)
    return SessionOut(
        session_id=session.id,
        track=session.track,
        topics=list(session.topics),
        difficulty=session.difficulty,
        num_questions=session.num_questions,
        mode=session.mode,
        status=session.status,
        created_at=session.created_at,
        finished_at=session.finished_at,
        current_question=interviews.question_out(session, current) if current else None,
        turns=[turn_out(interviews, session, t) for t in session.turns],
    )


# Routes that write are ``async`` and run their use case in a worker thread (``in_thread``):
# their transaction then stays open only until the dependency's commit, never across a wait for
# another worker thread (a plain ``def`` route's response is validated in one), where it would
# hold SQLite's write lock while every worker waits for it.


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SessionStarted)
async def start_session(
    body: SessionStart,
    db: SessionDep,
    interviews: InterviewsDep,
    x_candidate_token: Annotated[
        str | None,
        Header(
            max_length=200,
            description="The `candidate_token` of an earlier session: the new one avoids questions this "
            "candidate saw recently and leans toward their weakest topics. Unknown tokens start a new candidate.",
        ),
    ] = None,
) -> SessionStarted:
    """Start an interview; returns the session token (keep it secret) and the first question."""
    started = await in_thread(interviews.start, db, body, x_candidate_token)
    return SessionStarted(
        session_id=started.session.id,
        token=started.token,
        candidate_token=started.candidate_token,
        mode=body.mode,
        num_questions=body.num_questions,
        question=interviews.question_out(started.session, started.turn),
    )


@router.get("/{session_id}", response_model=SessionOut)
async def get_session(session: CurrentSession, db: SessionDep, interviews: InterviewsDep) -> SessionOut:
    """The session with its transcript (feedback hidden until the end in interview mode).

    A session left with nothing to answer by a server that stopped while grading is moved on
    here: its last answer is graded if need be and the next question asked."""
    await interviews.resume(db, session)
    return session_out(interviews, session)


def answer_out(interviews: InterviewService, session: InterviewSession, answered: Answered) -> AnswerOut:
    """The reply to an answer, the same for its first request and for any retry."""
    turn = answered.turn
    if answered.in_progress:
        message = "this answer is still being graded; ask again in a moment (GET the session)"
    elif answered.replay:
        message = "this answer was already recorded; nothing was changed"
    elif turn.grading_status == TurnGradingStatus.ungraded:
        message = "your answer is saved but could not be graded now; it will be graded later"
    else:
        message = ""
    return AnswerOut(
        turn_id=turn.id,
        grading_status=turn.grading_status,
        grading=answered.result if _show_feedback(session) else None,
        next_question=interviews.question_out(session, answered.next_turn) if answered.next_turn else None,
        finished=session.status == SessionStatus.finished,
        replay=answered.replay,
        message=message,
    )


@router.post("/{session_id}/answers", response_model=AnswerOut)
async def submit_answer(
    body: AnswerIn,
    session: CurrentSession,
    db: SessionDep,
    interviews: InterviewsDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> AnswerOut:
    """Answer the current question. Posting the same answer again changes nothing and gets the
    same reply (once the first request is done). The ``Server-Timing`` header says where the
    time went (keeping the answer, grading it, asking the next turn)."""
    answered = await interviews.answer(db, session, body.turn_id, body.answer, body.idempotency_key or idempotency_key)
    response.headers["Server-Timing"] = ", ".join(f"{k};dur={v * 1000:.1f}" for k, v in answered.timings.items())
    return answer_out(interviews, session, answered)


@router.post("/{session_id}/dont-know", response_model=AnswerOut)
async def dont_know(body: TurnRef, session: CurrentSession, db: SessionDep, interviews: InterviewsDep) -> AnswerOut:
    """Answer "I don't know": recorded and scored 0, and the interview moves on."""
    return answer_out(interviews, session, await interviews.answer(db, session, body.turn_id, IDK_ANSWER))


@router.post("/{session_id}/skip", response_model=AnswerOut)
async def skip(body: TurnRef, session: CurrentSession, db: SessionDep, interviews: InterviewsDep) -> AnswerOut:
    """Skip the current question (it counts as 0 in the report)."""
    next_turn = await in_thread(interviews.skip, db, session, body.turn_id)
    return AnswerOut(
        turn_id=body.turn_id,
        grading_status=TurnGradingStatus.skipped,
        next_question=interviews.question_out(session, next_turn) if next_turn else None,
        finished=session.status == SessionStatus.finished,
    )


@router.post(
    "/{session_id}/transcriptions",
    response_model=TranscriptOut,
    responses={
        404: {"description": "No transcription model is configured."},
        502: {"description": "The speech service failed."},
    },
)
async def transcription(audio: UploadFile, session: CurrentSession, transcriber: TranscriberDep) -> TranscriptOut:
    """A recorded answer (multipart ``audio``: webm, ogg, mp3, mp4, wav or flac) as text, for the
    candidate to check and edit before submitting it. Nothing is saved but the audit of the call."""
    return TranscriptOut(text=await transcribe_answer(transcriber, session, audio))


@router.post("/{session_id}/hint", response_model=HintOut)
async def hint(body: TurnRef, session: CurrentSession, db: SessionDep, interviews: InterviewsDep) -> HintOut:
    """The next hint for the current question."""
    turn, text, left = await in_thread(interviews.hint, db, session, body.turn_id)
    return HintOut(turn_id=turn.id, hint=text, hints_used=turn.hints_used, hints_left=left)


@router.post("/{session_id}/finish", response_model=Report)
async def finish(session: CurrentSession, db: SessionDep, interviews: InterviewsDep) -> Report:
    """End the session now and return its report."""
    return await in_thread(interviews.finish, db, session)


@router.get("/{session_id}/report", response_model=Report)
async def report(session: CurrentSession, db: SessionDep, interviews: InterviewsDep) -> Report:
    """The feedback report (available once the session is finished)."""
    return await in_thread(interviews.finished_report, db, session)  # one built now is kept by the commit
