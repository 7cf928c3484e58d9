"""What a report is built from and what it is: typed both ways.

The report domain sits below interview: it never imports the interview's models. Interview hands
it a :class:`SessionRecord` (read from the ORM objects with ``from_attributes``) and stores the
:class:`Report` it gets back as JSON on the session; pages, exports, the terminal and the API all
read that stored JSON back through :class:`Report`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.statuses import TurnGradingStatus, TurnStatus


class TurnRecord(BaseModel):
    """One turn as the report reads it."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    question_id: str
    question_text: str
    topic: str
    is_follow_up: bool
    parent_turn_id: str | None = None
    probes_point: str | None = None
    status: TurnStatus
    answer_text: str | None = None
    grading_status: TurnGradingStatus
    grading: dict[str, Any] | None = None
    score: float | None = None


class SessionRecord(BaseModel):
    """A session and its turns (in order), as the report reads them."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    track: str
    mode: str
    topics: list[str] = Field(default_factory=list)
    num_questions: int
    turns: list[TurnRecord]


class PointNote(BaseModel):
    """A rubric point the candidate made (a strength) or did not (a gap), with its evidence."""

    turn_id: str
    question_id: str
    point: str
    evidence: str | None = None
    verdict: str | None = None
    """For gaps: ``missing``, ``wrong`` or ``unclear`` (shown as "not confirmed")."""


class RecommendedQuestion(BaseModel):
    question_id: str
    topic: str
    difficulty: str
    question: str


class TranscriptEntry(BaseModel):
    turn_id: str
    question_id: str
    question: str
    topic: str
    is_follow_up: bool
    status: TurnStatus
    answer: str | None = None
    grading_status: TurnGradingStatus
    score: float | None = None
    grading: dict[str, Any] | None = None
    """The stored grading (a ``GradeResult`` as JSON), ``None`` while there is none."""


class Report(BaseModel):
    """The end-of-session feedback report."""

    session_id: str
    track: str
    mode: str
    overall_score: float | None = None
    """0-5 with one decimal over the main questions; ``None`` while none is scored."""
    passed: bool | None = None
    questions_answered: int
    questions_skipped: int
    questions_dont_know: int
    questions_scored: int
    questions_planned: int
    answered_summary: str
    """How many were answered, said plainly: "2 of 3 (1 skipped, counted as 0)"."""
    topic_scores: dict[str, float] = Field(default_factory=dict)
    topic_titles: dict[str, str] = Field(default_factory=dict)
    """Topic slug -> its title (as the bank declares it), for every topic the report names."""
    strengths: list[PointNote] = Field(default_factory=list)
    gaps: list[PointNote] = Field(default_factory=list)
    recommended: list[RecommendedQuestion] = Field(default_factory=list)
    ungraded_turns: list[str] = Field(default_factory=list)
    """Turns whose answer is kept but not graded yet (``mockinterview regrade`` grades them)."""
    grading_statuses: dict[str, int] = Field(default_factory=dict)
    transcript: list[TranscriptEntry] = Field(default_factory=list)

    def topic(self, slug: str) -> str:
        """The topic's title, or its slug when the bank declares none."""
        return self.topic_titles.get(slug, slug)
