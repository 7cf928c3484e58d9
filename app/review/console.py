"""Queries behind the reviewer console: turns and sessions by flag, grading status, topic, date."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, selectinload

from app.interview.models import InterviewSession, Turn
from app.review.models import ReviewOverride
from app.statuses import SessionStatus, TurnStatus

FLAG_LABELS = {
    "judge_disagreement": "judge and embeddings disagree",
    "suspected_injection": "suspected injection",
    "judge_parse_error": "judge output unusable",
    "judge_unavailable": "judge unavailable",
}


def flag_label(flag: str) -> str:
    return FLAG_LABELS.get(flag, flag.replace("_", " "))


@dataclass
class Filters:
    flagged: bool = False
    """Only turns flagged for review (any flag)."""
    flags: list[str] = field(default_factory=list)
    """Only turns carrying every one of these flags (e.g. ``judge_disagreement``)."""
    unscored: bool = False
    """Only answers without a score (``unscored``, or not graded yet)."""
    overridden: bool = False
    topic: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    """Inclusive, in UTC."""
    session_id: str | None = None
    limit: int = 100


def _day_start(d: date) -> datetime:
    return datetime.combine(d, time.min, tzinfo=UTC)


def _turn_query(f: Filters) -> Select[Turn]:
    query = select(Turn).where(Turn.status == TurnStatus.answered)
    if f.flagged or f.flags:
        query = query.where(Turn.flagged.is_(True))
    if f.unscored:
        query = query.where(Turn.score.is_(None))
    if f.topic:
        query = query.where(Turn.topic == f.topic)
    if f.session_id:
        query = query.where(Turn.session_id == f.session_id)
    if f.date_from:
        query = query.where(Turn.answered_at >= _day_start(f.date_from))
    if f.date_to:
        query = query.where(Turn.answered_at < _day_start(f.date_to + timedelta(days=1)))
    if f.overridden:
        query = query.where(Turn.id.in_(select(ReviewOverride.turn_id)))
    return query.order_by(Turn.answered_at.desc(), Turn.id)


def search_turns(db: Session, f: Filters) -> list[Turn]:
    """Answered turns, newest first. Flags live in the grading JSON, so the flag filter is
    applied here, over the (already narrowed) flagged turns, until ``limit`` match."""
    limit = max(1, min(f.limit, 500))
    if not f.flags:
        return list(db.scalars(_turn_query(f).limit(limit)))
    found: list[Turn] = []
    result = db.scalars(_turn_query(f).execution_options(yield_per=200))
    try:
        for turn in result:
            flags = set((turn.grading or {}).get("flags") or [])
            if all(x in flags for x in f.flags):
                found.append(turn)
                if len(found) >= limit:
                    break
    finally:
        result.close()
    return found


def override_counts(db: Session, turn_ids: list[str]) -> dict[str, int]:
    if not turn_ids:
        return {}
    rows = db.execute(
        select(ReviewOverride.turn_id, func.count())
        .where(ReviewOverride.turn_id.in_(turn_ids))
        .group_by(ReviewOverride.turn_id)
    )
    return {turn_id: int(n) for turn_id, n in rows}


def latest_overrides(db: Session, turn_ids: list[str]) -> dict[str, ReviewOverride]:
    """The newest override of each turn."""
    if not turn_ids:
        return {}
    out: dict[str, ReviewOverride] = {}
    for row in db.scalars(
        select(ReviewOverride).where(ReviewOverride.turn_id.in_(turn_ids)).order_by(ReviewOverride.created_at)
    ):
        out[row.turn_id] = row
    return out


@dataclass
class SessionRow:
    session: InterviewSession
    answered: int
    flagged: int
    unscored: int
    flags: Counter[str]
    overall: float | None


def search_sessions(db: Session, f: Filters) -> list[SessionRow]:
    """Sessions, newest first, with counts of their answered, flagged and unscored turns.

    ``topic`` matches a session that asked a question of that topic; ``flagged``, ``flags``
    and ``unscored`` keep the sessions with at least one such turn.
    """
    query = select(InterviewSession).options(selectinload(InterviewSession.turns))
    if f.session_id:
        query = query.where(InterviewSession.id == f.session_id)
    if f.date_from:
        query = query.where(InterviewSession.created_at >= _day_start(f.date_from))
    if f.date_to:
        query = query.where(InterviewSession.created_at < _day_start(f.date_to + timedelta(days=1)))
    query = query.order_by(InterviewSession.created_at.desc(), InterviewSession.id)
    limit = max(1, min(f.limit, 500))
    rows: list[SessionRow] = []
    result = db.scalars(query.execution_options(yield_per=100))
    try:
        rows = _session_rows(result, f, limit)
    finally:
        result.close()
    return rows


def _session_rows(sessions: Iterable[InterviewSession], f: Filters, limit: int) -> list[SessionRow]:
    rows: list[SessionRow] = []
    for s in sessions:
        answered = [t for t in s.turns if t.status == TurnStatus.answered]
        flags: Counter[str] = Counter()
        for t in answered:
            flags.update((t.grading or {}).get("flags") or [])
        row = SessionRow(
            session=s,
            answered=len(answered),
            flagged=sum(1 for t in answered if t.flagged),
            unscored=sum(1 for t in answered if t.score is None),
            flags=flags,
            overall=(s.report or {}).get("overall_score") if s.status == SessionStatus.finished else None,
        )
        if f.topic and f.topic not in {t.topic for t in s.turns}:
            continue
        if (f.flagged or f.flags) and not row.flagged:
            continue
        if f.flags and not all(flags[x] for x in f.flags):
            continue
        if f.unscored and not row.unscored:
            continue
        rows.append(row)
        if len(rows) >= limit:
            break
    return rows


def known_topics(db: Session) -> list[str]:
    return sorted(t for t in db.scalars(select(Turn.topic).distinct()) if t)
