"""Bodies of the reviewer API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app.statuses import TurnGradingStatus


class OverrideIn(BaseModel):
    score: float = Field(ge=0, le=5)
    note: str = Field(default="", max_length=2000)
    reviewer: str = Field(default="reviewer", max_length=200)


class OverrideOut(BaseModel):
    id: str
    turn_id: str
    reviewer: str
    original_score: float | None
    score: float
    note: str
    created_at: datetime


class LLMCallOut(BaseModel):
    """One audited LLM call, as the reviewer reads it."""

    id: str
    created_at: datetime
    purpose: str
    """``judge`` (the grading), ``follow_up`` (a follow-up question the judge was asked to write) or
    ``transcription`` (a recorded answer turned into text)."""
    model: str
    prompt_version: str
    outcome: str
    latency_ms: float
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    attempt: int
    error: str | None = None
    request: dict[str, Any]
    response: str | None = None


class ReviewTurn(BaseModel):
    turn_id: str
    session_id: str
    question_id: str
    question_text: str
    topic: str
    answer: str | None
    grading_status: TurnGradingStatus
    score: float | None
    flags: list[str]
    grading: dict[str, Any] | None
    overrides: list[OverrideOut] = Field(default_factory=list)
    llm_calls: list[LLMCallOut] = Field(default_factory=list)
