"""Request and response bodies of the interview API.

Field names here are a public contract (clients and scripts rely on them): a session starts
with ``track``, ``topics``, ``difficulty``, ``num_questions`` and ``mode``; the reply carries
``session_id``, ``token`` and ``question`` (``turn_id``, ``text``); an answer is posted as
``turn_id`` and ``answer``; a grading carries ``score`` (0-5).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator

from app.grading.schemas import GradeResult
from app.statuses import SessionMode, SessionStatus, TurnGradingStatus, TurnStatus
from app.text import PLAIN_SCHEMA, PlainKey, PlainName, check_text

DifficultyChoice = Literal["easy", "medium", "hard", "adaptive"]


class SessionStart(BaseModel):
    track: PlainKey = Field(default="mlops", examples=["mlops"])
    topics: list[PlainKey] = Field(default_factory=list, max_length=50, examples=[["deployment", "monitoring-drift"]])
    difficulty: DifficultyChoice = "adaptive"
    num_questions: int = Field(default=5, ge=1, le=30, strict=True)
    mode: SessionMode = SessionMode.practice
    seed: int | None = Field(
        default=None, ge=0, lt=2**31, strict=True, description="Fixes the question order (for tests)."
    )
    candidate_name: PlainName | None = None


class QuestionOut(BaseModel):
    turn_id: str
    text: str
    question_id: str
    topic: str
    topic_title: str = ""
    """The topic as people read it (the title its bank file declares, else the slug)."""
    difficulty: str
    is_follow_up: bool
    parent_turn_id: str | None = None
    number: int
    """1-based number of the main question this turn belongs to."""
    total: int
    hints_available: int
    difficulty_note: str | None = None
    """Set when the session asked for a fixed difficulty the bank could no longer give."""


class SessionStarted(BaseModel):
    session_id: str
    token: str
    """Secret session token: send it as ``Authorization: Bearer <token>``."""
    candidate_token: str
    """Identifies the candidate across sessions (send as ``X-Candidate-Token`` when starting)."""
    mode: SessionMode
    num_questions: int
    question: QuestionOut


class AnswerIn(BaseModel):
    turn_id: PlainKey
    answer: Annotated[str, PLAIN_SCHEMA]
    idempotency_key: PlainKey | None = None

    @field_validator("answer")
    @classmethod
    def _answer_text(cls, value: str) -> str:
        check_text(value, "answer")
        if not value.strip():
            raise ValueError('answer is empty; write an answer, or use skip or "I don\'t know"')
        return value


class TurnRef(BaseModel):
    turn_id: PlainKey


class AnswerOut(BaseModel):
    turn_id: str
    grading_status: TurnGradingStatus
    grading: GradeResult | None = None
    """Present in practice mode once graded; interview mode keeps feedback for the report."""
    next_question: QuestionOut | None = None
    finished: bool
    replay: bool = False
    """True when this exact answer was already recorded (a retry): nothing was changed."""
    message: str = ""


class TranscriptOut(BaseModel):
    text: str
    """What the recording says: put it in the answer box for the candidate to check and edit."""


class HintOut(BaseModel):
    turn_id: str
    hint: str
    hints_used: int
    hints_left: int


class TurnOut(BaseModel):
    turn_id: str
    position: int
    question_id: str
    question_text: str
    topic: str
    difficulty: str
    is_follow_up: bool
    parent_turn_id: str | None
    status: TurnStatus
    answer: str | None
    grading_status: TurnGradingStatus
    score: float | None = None
    grading: GradeResult | None = None
    hints_used: int
    asked_at: datetime
    answered_at: datetime | None


class SessionOut(BaseModel):
    session_id: str
    track: str
    topics: list[str]
    difficulty: str
    num_questions: int
    mode: SessionMode
    status: SessionStatus
    created_at: datetime
    finished_at: datetime | None
    current_question: QuestionOut | None
    turns: list[TurnOut]
