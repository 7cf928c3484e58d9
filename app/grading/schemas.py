"""Data shapes shared by every part of the grader.

The embedding evidence, the LLM judge and the combiner all speak in these types, and the
interview engine, the API and the CLI only ever see :class:`GradeResult`.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

# The scale and rubric types live below the domains (the bank declares rubrics too); the
# grader's modules read them from here as well.
from app.rubric import PASS_MARK as PASS_MARK
from app.rubric import RubricPoint as RubricPoint
from app.rubric import passed as passed
from app.rubric import round_score as round_score


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


class JudgeStatus(StrEnum):
    """How one judging ended."""

    ok = "ok"
    parse_error = "parse_error"
    """The model replied, but nothing usable could be read from it (never scored 0)."""
    unavailable = "unavailable"
    """No reply: timeouts, HTTP errors after retries, a replay miss."""


class GradeFlag(StrEnum):
    """What a grading wants a reviewer (or the interview) to know."""

    suspected_injection = "suspected_injection"
    """Part of the answer spoke to the grader; it was set aside and earned nothing."""
    judge_parse_error = "judge_parse_error"
    judge_unavailable = "judge_unavailable"
    judge_pending = "judge_pending"
    """Scored by the embedding evidence for now; the judge's late verdict will replace it."""
    judge_disagreement = "judge_disagreement"
    """Judge and embedding evidence differ by more than ``disagreement_margin``."""
    off_topic = "off_topic"
    """The answer shares no term with the question or its rubric (no follow-up is asked)."""
    unconfirmed_points = "unconfirmed_points"
    """Some points are ``unclear``: a judge or a reviewer would settle them."""


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
    turn_id: str | None = None
    """The interview turn being graded, if any: the judge's audit records point at it."""


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

    score: float = Field(ge=0.0, le=5.0)
    """0-5 with one decimal. There is always one: when the judge fails, the embedding evidence
    scores alone (``embedding_only``); when even that fails, the grader raises and the answer
    stays ``ungraded``."""
    status: GradeStatus
    passed: bool
    points: list[PointResult] = Field(default_factory=list)
    embedding_score: float | None = None
    judge_score: float | None = None
    reference_similarity: float | None = None
    strengths: list[str] = Field(default_factory=list)
    gaps: list[str] = Field(default_factory=list)
    improvement: str = ""
    follow_up: str | None = None
    flags: list[GradeFlag] = Field(default_factory=list)
    non_answer: bool = False
    """No substantive answer ("I don't know", empty, the question copied back): scored 0 by rule,
    no model asked."""
    judge_status: JudgeStatus | None = None
    """How the judge's reading ended; ``None`` when no judge was asked (none configured, or a
    non-answer)."""
    """Reasons to show this turn to a human reviewer (e.g. ``judge_disagreement``,
    ``suspected_injection``)."""
    status_message: str = ""
    """Plain words for the user about how this was graded (e.g. that the judge was off)."""
    versions: GraderVersions | None = None


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
    turn_id: str | None = None


class JudgeOutcome(BaseModel):
    """What one judging produced: a verdict, or the plain reason there is none."""

    verdict: JudgeVerdict | None = None
    status: JudgeStatus
    error: str | None = None
    calls: int = 0
