"""Reviewer operations. Overrides are added beside the grader's score, which is never changed."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.base import begin_write
from app.errors import NotFound
from app.grading.models import LLMCall
from app.grading.schemas import GradeFlag
from app.interview.models import Turn
from app.review.models import ReviewOverride
from app.review.schemas import LLMCallOut, OverrideIn, OverrideOut, ReviewTurn
from app.statuses import TurnGradingStatus, TurnStatus
from app.text import is_id


def list_turns(
    db: Session,
    *,
    flagged: bool | None = None,
    grading_status: TurnGradingStatus | None = None,
    topic: str | None = None,
    flag: GradeFlag | None = None,
    limit: int = 100,
) -> list[Turn]:
    query = select(Turn).where(Turn.status == TurnStatus.answered).order_by(Turn.answered_at.desc())
    if flagged is not None:
        query = query.where(Turn.flagged.is_(flagged))
    if grading_status:
        query = query.where(Turn.grading_status == grading_status)
    if topic:
        query = query.where(Turn.topic == topic)
    turns = list(db.scalars(query.limit(limit * 5 if flag else limit)))
    if flag:
        turns = [t for t in turns if flag in ((t.grading or {}).get("flags") or [])][:limit]
    return turns


def get_turn(db: Session, turn_id: str) -> Turn:
    turn = db.get(Turn, turn_id) if is_id(turn_id) else None
    if turn is None:
        raise NotFound("turn not found")
    return turn


def override_turn(db: Session, turn_id: str, body: OverrideIn) -> ReviewOverride:
    """Record a reviewer's override of the turn ``turn_id`` (flushed, with its id)."""
    begin_write(db)
    return override(db, get_turn(db, turn_id), body)


def override(db: Session, turn: Turn, body: OverrideIn) -> ReviewOverride:
    row = ReviewOverride(
        turn_id=turn.id, reviewer=body.reviewer, original_score=turn.score, score=round(body.score, 1), note=body.note
    )
    db.add(row)
    db.flush()
    return row


def overrides_of(db: Session, turn_id: str) -> list[ReviewOverride]:
    return list(
        db.scalars(select(ReviewOverride).where(ReviewOverride.turn_id == turn_id).order_by(ReviewOverride.created_at))
    )


def audit_of(db: Session, turn_id: str) -> list[LLMCallOut]:
    """The audited LLM calls of a turn (its judging and any follow-up it led to), oldest first."""
    calls = db.scalars(select(LLMCall).where(LLMCall.turn_id == turn_id).order_by(LLMCall.created_at))
    return [LLMCallOut.model_validate(c, from_attributes=True) for c in calls]


def review_turn(db: Session, turn: Turn, detail: bool = False) -> ReviewTurn:
    grading = turn.grading or {}
    return ReviewTurn(
        turn_id=turn.id,
        session_id=turn.session_id,
        question_id=turn.question_id,
        question_text=turn.question_text,
        topic=turn.topic,
        answer=turn.answer_text,
        grading_status=turn.grading_status,
        score=turn.score,
        flags=list(grading.get("flags") or []),
        grading=turn.grading,
        overrides=[OverrideOut.model_validate(o, from_attributes=True) for o in overrides_of(db, turn.id)]
        if detail
        else [],
        llm_calls=audit_of(db, turn.id) if detail else [],
    )
