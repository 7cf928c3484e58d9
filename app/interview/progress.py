"""A candidate's sessions over time: who the candidate is (by token) and how they did per topic.

Read-only helpers for the progress page. A candidate is known only by the hash of their
candidate token, exactly as :meth:`InterviewService.candidate_for` stores it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.bank.loader import Bank
from app.db.base import as_utc
from app.interview.models import Candidate, InterviewSession
from app.interview.reporting import live_report, stored_report
from app.reports.schemas import Report
from app.security import hash_token
from app.statuses import SessionMode, SessionStatus


def candidate_by_token(db: Session, candidate_token: str | None) -> Candidate | None:
    """The candidate whose token this is, or ``None`` (an unknown token reveals nothing)."""
    if not candidate_token:
        return None
    return db.scalar(select(Candidate).where(Candidate.token_hash == hash_token(candidate_token)))


def sessions_of(db: Session, candidate: Candidate) -> list[InterviewSession]:
    """The candidate's sessions, oldest first."""
    return list(
        db.scalars(
            select(InterviewSession)
            .where(InterviewSession.candidate_id == candidate.id)
            .order_by(InterviewSession.created_at, InterviewSession.id)
        )
    )


@dataclass
class SessionPoint:
    session: InterviewSession
    when: datetime
    overall: float | None
    topic_scores: dict[str, float]
    answered: int


@dataclass
class Progress:
    points: list[SessionPoint] = field(default_factory=list)

    @property
    def topics(self) -> list[str]:
        return sorted({t for p in self.points for t in p.topic_scores})

    def series(self) -> dict[str, list[tuple[int, float]]]:
        """Per topic, ``(index of the session, score)`` for the sessions that scored it."""
        out: dict[str, list[tuple[int, float]]] = {t: [] for t in self.topics}
        for i, p in enumerate(self.points):
            for topic, score in p.topic_scores.items():
                out[topic].append((i, score))
        return out


def progress_of(sessions: list[InterviewSession], bank: Bank) -> Progress:
    """Scores of each session: the stored report when finished, a live one for a practice
    session in progress, none for an interview-mode session in progress (its feedback waits
    for the end)."""
    points = []
    for s in sessions:
        report: Report | None = None
        if s.status == SessionStatus.finished:
            report = stored_report(s) or live_report(s, bank)
        elif s.mode == SessionMode.practice:
            report = live_report(s, bank)
        points.append(
            SessionPoint(
                session=s,
                when=as_utc(s.created_at),
                overall=report.overall_score if report else None,
                topic_scores=dict(report.topic_scores) if report else {},
                answered=report.questions_answered if report else 0,
            )
        )
    return Progress(points)
