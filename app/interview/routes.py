"""The interview JSON API: ``/api/sessions``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, status
from sqlalchemy.orm import Session

from app.deps import CurrentSession, InterviewsDep, SessionDep
from app.interview.models import InterviewSession, Turn
from app.interview.schemas import (
    AnswerIn,
    AnswerOut,
    HintOut,
    SessionOut,
    SessionStart,
    SessionStarted,
    TurnOut,
    TurnRef,
)
from app.interview.service import IDK_ANSWER, InterviewService

router = APIRouter(prefix="/api/sessions", tags=["sessions"])


def _show_feedback(session: InterviewSession) -> bool:
    return session.mode == "practice" or session.status == "finished"


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


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SessionStarted)
def start_session(
    body: SessionStart,
    db: SessionDep,
    interviews: InterviewsDep,
    x_candidate_token: Annotated[str | None, Header()] = None,
) -> SessionStarted:
    """Start an interview; returns the session token (keep it secret) and the first question."""
    started = interviews.start(db, body, x_candidate_token)
    db.commit()
    return SessionStarted(
        session_id=started.session.id,
        token=started.token,
        candidate_token=started.candidate_token,
        mode=body.mode,
        num_questions=body.num_questions,
        question=interviews.question_out(started.session, started.turn),
    )


@router.get("/{session_id}", response_model=SessionOut)
def get_session(session: CurrentSession, interviews: InterviewsDep) -> SessionOut:
    """The session with its transcript (feedback hidden until the end in interview mode)."""
    return session_out(interviews, session)


async def answer_turn(
    session: InterviewSession, db: Session, interviews: InterviewService, turn_id: str, answer: str, key: str | None
) -> AnswerOut:
    """Keep the answer (committed before grading), grade it, ask the next turn, commit.

    Shared by the JSON API, the web pages and the terminal interview, so all three keep the
    same order of commits.
    """
    recorded = interviews.record_answer(db, session, turn_id, answer, key)
    turn = recorded.turn
    if recorded.replay:
        current = interviews.current_turn(session)
        result = interviews.grading_of(turn)
        return AnswerOut(
            turn_id=turn.id,
            grading_status=turn.grading_status,
            grading=result if _show_feedback(session) else None,
            next_question=interviews.question_out(session, current) if current else None,
            finished=session.status == "finished",
            replay=True,
            message="this answer was already recorded; nothing was changed",
        )
    db.commit()  # the answer is kept before grading starts
    result = await interviews.grade_turn(db, session, turn)
    db.commit()
    next_turn = interviews.advance(db, session, turn, result)
    db.commit()
    message = (
        "" if result is not None else ("your answer is saved but could not be graded now; it will be graded later")
    )
    return AnswerOut(
        turn_id=turn.id,
        grading_status=turn.grading_status,
        grading=result if _show_feedback(session) else None,
        next_question=interviews.question_out(session, next_turn) if next_turn else None,
        finished=session.status == "finished",
        message=message,
    )


@router.post("/{session_id}/answers", response_model=AnswerOut)
async def submit_answer(
    body: AnswerIn,
    session: CurrentSession,
    db: SessionDep,
    interviews: InterviewsDep,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> AnswerOut:
    """Answer the current question. Posting the same answer again changes nothing."""
    return await answer_turn(
        session, db, interviews, body.turn_id, body.answer, body.idempotency_key or idempotency_key
    )


@router.post("/{session_id}/dont-know", response_model=AnswerOut)
async def dont_know(body: TurnRef, session: CurrentSession, db: SessionDep, interviews: InterviewsDep) -> AnswerOut:
    """Answer "I don't know": recorded and scored 0, and the interview moves on."""
    return await answer_turn(session, db, interviews, body.turn_id, IDK_ANSWER, None)


@router.post("/{session_id}/skip", response_model=AnswerOut)
def skip(body: TurnRef, session: CurrentSession, db: SessionDep, interviews: InterviewsDep) -> AnswerOut:
    """Skip the current question (it counts as 0 in the report)."""
    next_turn = interviews.skip(db, session, body.turn_id)
    db.commit()
    return AnswerOut(
        turn_id=body.turn_id,
        grading_status="skipped",
        next_question=interviews.question_out(session, next_turn) if next_turn else None,
        finished=session.status == "finished",
    )


@router.post("/{session_id}/hint", response_model=HintOut)
def hint(body: TurnRef, session: CurrentSession, db: SessionDep, interviews: InterviewsDep) -> HintOut:
    """The next hint for the current question."""
    turn, text, left = interviews.hint(db, session, body.turn_id)
    db.commit()
    return HintOut(turn_id=turn.id, hint=text, hints_used=turn.hints_used, hints_left=left)


@router.post("/{session_id}/finish")
def finish(session: CurrentSession, db: SessionDep, interviews: InterviewsDep) -> dict[str, Any]:
    """End the session now and return its report."""
    report = interviews.finish(db, session)
    db.commit()
    return report


@router.get("/{session_id}/report")
def report(session: CurrentSession, db: SessionDep, interviews: InterviewsDep) -> dict[str, Any]:
    """The feedback report (available once the session is finished)."""
    report = interviews.finished_report(db, session)
    db.commit()  # keeps a report that had to be built now
    return report
