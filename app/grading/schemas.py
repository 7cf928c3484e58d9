"""Data shapes shared by every part of the grader.

The embedding evidence, the LLM judge and the combiner all speak in these types, and the
interview engine, the API and the CLI only ever see :class:`GradeResult`.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

PASS_MARK = 3.0
"""Scores are on 0-5 with one decimal; 3.0 and above passes."""


class Verdict(StrEnum):
    covered = "covered"
    partial = "partial"
    missing = "missing"
    wrong = "wrong"
    unclear = "unclear"
    """The embedding evidence cannot decide; shown as "not confirmed", never as missing."""


class GradeStatus(StrEnum):
    graded = "graded"  # judge and embedding evidence both contributed
    embedding_only = "embedding_only"  # no judge configured, or the judge failed
    unscored = "unscored"  # nothing could produce a trustworthy score


class RubricPoint(BaseModel):
    """One checkable key point of a good answer."""

    id: str
    text: str
    weight: float = Field(default=1.0, gt=0)
    essential: bool = False
    variants: list[str] = Field(default_factory=list)
    """Plain-language restatements that earn the same credit as ``text``."""
    misconceptions: list[str] = Field(default_factory=list)
    """Wrong claims that contradict this point; evidence closer to one of them marks it wrong."""


class GradeInput(BaseModel):
    """Everything a grader needs to score one answer."""

    question: str
    reference_answer: str
    answer: str
    rubric: list[RubricPoint] = Field(default_factory=list)
    question_id: str | None = None
    bank_hash: str | None = None
    """Content hash of the bank question; part of the judge cache key."""
    derived_rubric: bool = False
    """True when ``rubric`` was derived from the reference answer rather than written for the
    question: such answers are scored by the reference-answer calibration."""


class PointResult(BaseModel):
    """How well one rubric point is covered, with the evidence for it."""

    id: str
    text: str
    verdict: Verdict
    coverage: float = Field(ge=0.0, le=1.0)
    """Embedding coverage (0-1) of the point by its best-matching answer window."""
    evidence: str | None = None
    """The answer sentence or window that matched best (verbatim), if any matched."""
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    """How sure the embedding verdict is (0 = a coin toss, 1 = certain); 0 for an ``unclear``
    point where the pair head says no but the answer's words cover the point."""
    misconception: str | None = None
    """The misconception the evidence states, when the verdict is ``wrong``."""
    judge_verdict: Verdict | None = None
    judge_quote: str | None = None


class EmbeddingEvidence(BaseModel):
    """The embedding grader's output for one answer."""

    score: float = Field(ge=0.0, le=5.0)
    reference_similarity: float
    points: list[PointResult]
    features: dict[str, float] = Field(default_factory=dict)
    model: str
    calibration_version: str
    non_answer: bool = False
    """True when the answer was empty, "I don't know" or near-empty (scored 0, no model call)."""
    caps: list[str] = Field(default_factory=list)
    """Why the score was capped (``keyword_list``, ``wrong_essential``, ``wrong_point``)."""


class JudgePoint(BaseModel):
    id: str
    verdict: Verdict
    quote: str = ""
    reasoning: str = ""


class JudgeVerdict(BaseModel):
    """The LLM judge's parsed, validated output for one answer."""

    reasoning: str = ""
    points: list[JudgePoint]
    score: float = Field(ge=0.0, le=5.0)
    strengths: list[str] = Field(default_factory=list)
    gaps: list[str] = Field(default_factory=list)
    improvement: str = ""
    follow_up: str = ""
    injection_attempt: bool = False
    """The judge (or the pre-check) saw text that tries to instruct the grader."""
    prompt_version: str
    model: str
    cached: bool = False


class GraderVersions(BaseModel):
    embedding_model: str
    calibration: str
    prompt: str | None = None
    judge_model: str | None = None


class GradeResult(BaseModel):
    """The final, explainable grading of one answer."""

    score: float | None = Field(default=None, ge=0.0, le=5.0)
    """0-5 with one decimal; ``None`` only when ``status`` is ``unscored``."""
    status: GradeStatus
    passed: bool | None = None
    points: list[PointResult] = Field(default_factory=list)
    embedding_score: float | None = None
    judge_score: float | None = None
    reference_similarity: float | None = None
    strengths: list[str] = Field(default_factory=list)
    gaps: list[str] = Field(default_factory=list)
    improvement: str = ""
    follow_up: str | None = None
    flags: list[str] = Field(default_factory=list)
    """Reasons to show this turn to a human reviewer (e.g. ``judge_disagreement``,
    ``suspected_injection``)."""
    status_message: str = ""
    """Plain words for the user about how this was graded (e.g. that the judge was off)."""
    versions: GraderVersions | None = None


def round_score(value: float) -> float:
    """Clamp to 0-5 and round to one decimal, the scale every score is shown on."""
    return round(min(5.0, max(0.0, float(value))), 1)


def passed(score: float | None) -> bool | None:
    return None if score is None else score >= PASS_MARK


class LLMCallRecord(BaseModel):
    """One call to the LLM, as written to the audit table (successful or not)."""

    purpose: str = "judge"
    prompt_version: str
    model: str
    base_url: str | None = None
    request: dict[str, object]
    response: str | None = None
    """The raw response body text (or the error body), kept verbatim."""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float
    outcome: str
    """``ok``, ``cached``, ``parse_error``, ``http_error``, ``timeout``, ``rate_limited`` ..."""
    error: str | None = None
    attempt: int = 1
    cache_key: str | None = None
    question_id: str | None = None


class JudgeOutcome(BaseModel):
    """What one judging produced: a verdict, or the plain reason there is none."""

    verdict: JudgeVerdict | None = None
    status: str
    """``ok``, ``parse_error`` (model answered but unusably: unscored by the judge), or
    ``unavailable`` (timeouts, HTTP errors after retries)."""
    error: str | None = None
    calls: int = 0
