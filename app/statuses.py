"""The lifecycle states stored on sessions and turns, shared by every domain that reads them.

Interview writes them, the sweeper and the reviewer select by them, reports count them. They
live below the domains (like ids and time) so that none has to import another to speak of a
turn's state. Stored as their string values (``String(16)`` columns, see
:class:`app.db.base.StrEnumType`), so a row written before an enum existed reads the same.
"""

from __future__ import annotations

from enum import StrEnum


class SessionMode(StrEnum):
    practice = "practice"
    """Feedback after each answer."""
    interview = "interview"
    """Feedback only in the end-of-session report."""


class SessionStatus(StrEnum):
    active = "active"
    finished = "finished"


class TurnStatus(StrEnum):
    asked = "asked"
    """Waiting for the candidate's answer."""
    answered = "answered"
    skipped = "skipped"
    unanswered = "unanswered"
    """Still open when the session finished."""


class TurnGradingStatus(StrEnum):
    """Where a turn's grading stands (a superset of the grader's own ``GradeStatus``)."""

    pending = "pending"
    """No answer yet."""
    ungraded = "ungraded"
    """The answer is kept; grading has not finished or failed (the sweeper retries it)."""
    graded = "graded"
    """Judge and embedding evidence both contributed."""
    embedding_only = "embedding_only"
    """No judge configured, or the judge failed (``judge_pending`` says whether it is retried)."""
    skipped = "skipped"
    """Skipped or left unanswered: scored 0, nothing to grade."""
