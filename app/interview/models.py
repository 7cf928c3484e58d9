"""Persistence for candidates, interview sessions and their turns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base, JSONType, StrEnumType, new_id, utcnow
from app.statuses import SessionMode, SessionStatus, TurnGradingStatus, TurnStatus


class Candidate(Base):
    __tablename__ = "candidates"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    sessions: Mapped[list[InterviewSession]] = relationship(back_populates="candidate")


class InterviewSession(Base):
    __tablename__ = "interview_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    candidate_id: Mapped[str] = mapped_column(ForeignKey("candidates.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    track: Mapped[str] = mapped_column(String(64))
    topics: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    difficulty: Mapped[str] = mapped_column(String(16))
    num_questions: Mapped[int] = mapped_column(Integer)
    mode: Mapped[SessionMode] = mapped_column(StrEnumType(SessionMode))
    seed: Mapped[int] = mapped_column(Integer)
    status: Mapped[SessionStatus] = mapped_column(StrEnumType(SessionStatus), default=SessionStatus.active)
    """``active`` or ``finished``."""
    bank_version: Mapped[str] = mapped_column(String(32))
    report: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    share_token_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None]

    candidate: Mapped[Candidate] = relationship(back_populates="sessions")
    turns: Mapped[list[Turn]] = relationship(
        back_populates="session", order_by="Turn.position", cascade="all, delete-orphan"
    )


class Turn(Base):
    """One question as asked, and what became of it."""

    __tablename__ = "turns"
    __table_args__ = (
        UniqueConstraint("session_id", "position", name="uq_turns_session_position"),
        Index("ix_turns_grading_status", "grading_status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    session_id: Mapped[str] = mapped_column(ForeignKey("interview_sessions.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    question_id: Mapped[str] = mapped_column(String(120))
    bank_hash: Mapped[str] = mapped_column(String(32))
    question_text: Mapped[str] = mapped_column(Text)
    topic: Mapped[str] = mapped_column(String(64))
    difficulty: Mapped[str] = mapped_column(String(16))
    is_follow_up: Mapped[bool] = mapped_column(Boolean, default=False)
    parent_turn_id: Mapped[str | None] = mapped_column(ForeignKey("turns.id"))
    probes_point: Mapped[str | None] = mapped_column(String(32))
    """The rubric point id a follow-up probes (``None`` for a deeper follow-up)."""
    status: Mapped[TurnStatus] = mapped_column(StrEnumType(TurnStatus), default=TurnStatus.asked)
    answer_text: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    hints_used: Mapped[int] = mapped_column(Integer, default=0)
    asked_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[datetime | None]
    grading_status: Mapped[TurnGradingStatus] = mapped_column(
        StrEnumType(TurnGradingStatus), default=TurnGradingStatus.pending
    )
    grading: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    grading_error: Mapped[str | None] = mapped_column(Text)
    graded_at: Mapped[datetime | None]
    score: Mapped[float | None]
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    shadow_grading: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    judge_pending: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    """A judge is configured but this turn's grading has no verdict from it yet (the judge
    failed, or missed the candidate's deadline): the sweeper regrades it once the judge is
    healthy again."""
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    """The process (``app_instances.id``) grading this answer right now, if any."""
    claimed_at: Mapped[datetime | None]

    session: Mapped[InterviewSession] = relationship(back_populates="turns")
