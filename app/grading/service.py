"""The grading interface the rest of the product uses: embedding evidence + rubric LLM judge.

``Grader.grade`` always returns a :class:`GradeResult` whose status says plainly how it was
made: ``graded`` (judge and embeddings), ``embedding_only`` (no judge, or the judge failed) or
``unscored``. It raises only when even the embedding evidence could not be computed, so the
caller can keep the answer as ``ungraded`` and grade it later.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING

from app.config import Settings
from app.grading.claims import MSG_KEYWORD_LIST
from app.grading.features import is_off_topic
from app.grading.injection import screen
from app.grading.rubric import derive_points
from app.grading.schemas import (
    EmbeddingEvidence,
    GradeInput,
    GradeResult,
    GraderVersions,
    GradeStatus,
    JudgeOutcome,
    LLMCallRecord,
    PointResult,
    Verdict,
    passed,
    round_score,
)
from app.grading.verdicts import SCORE_CAPS
from app.observability import GRADING_SECONDS, GRADINGS, REVIEW_FLAGS

if TYPE_CHECKING:
    from app.grading.batching import MicroBatcher
    from app.grading.embedding_grader import EmbeddingGrader
    from app.grading.judge import Judge

current_turn_id: ContextVar[str | None] = ContextVar("current_turn_id", default=None)
"""The turn being graded, so audit records of LLM calls can point at it."""

AuditSink = Callable[[LLMCallRecord], Awaitable[None] | None]

MSG_EMBEDDING_ONLY_OFF = (
    "Scored by embedding similarity only: no LLM judge is configured, so the rubric points "
    "were matched by meaning, not read by a judge."
)
MSG_JUDGE_FAILED = (
    "Scored by embedding similarity only: the LLM judge {why}, so this score did not get a "
    "judge's reading. It can be regraded later."
)
MSG_JUDGE_LATE = (
    "Scored by embedding similarity for now: the LLM judge had not replied within {s} s, so the "
    "interview went on. The judge's reading replaces this score when it arrives."
)
MSG_NON_ANSWER = "No substantive answer was given, so it scores 0 (no model was asked)."
INJECTION_PENALTY = 0.3
MSG_INJECTION = (
    "Part of the answer spoke to the grader instead of answering the question; it was set aside, "
    "earned nothing, and the turn is flagged for a reviewer."
)
MSG_OFF_TOPIC = "The answer shares no term with the question or its rubric: it seems to be about something else."
MSG_HYBRID = "Scored by the rubric LLM judge and embedding similarity together."
MSG_UNCLEAR = (
    "{n} rubric point{s} could not be confirmed from the embedding evidence (shown as not "
    "confirmed, not as missing): an LLM judge or a reviewer would settle them."
)
CAP_MESSAGES = {
    "keyword_list": MSG_KEYWORD_LIST,
    "wrong_essential": "The answer states a known misconception about an essential point, so it cannot pass.",
    "wrong_point": "The answer states a known misconception about a rubric point, so it cannot pass.",
}


class Grader:
    """Combines the embedding grader (always on) with the LLM judge (when configured)."""

    def __init__(
        self,
        settings: Settings,
        embedding: EmbeddingGrader,
        judge: Judge | None = None,
        batcher: MicroBatcher | None = None,
    ) -> None:
        self.settings = settings
        self.embedding = embedding
        self.judge = judge
        self.batcher = batcher

    @property
    def mode(self) -> str:
        return "hybrid" if self.judge is not None else "embedding"

    def versions(self, judged: bool, calibration: str | None = None) -> GraderVersions:
        return GraderVersions(
            embedding_model=self.embedding.encoder.name,
            calibration=calibration or self.embedding.calibration.version,
            prompt=self.settings.judge_prompt_version if judged else None,
            judge_model=self.settings.judge_model if judged else None,
        )

    async def _embedding(self, inp: GradeInput) -> EmbeddingEvidence:
        if self.batcher is not None:
            return await self.batcher.grade(inp)
        return (await asyncio.to_thread(self.embedding.grade_batch, [inp]))[0]

    async def grade(self, inp: GradeInput) -> GradeResult:
        """Grade, waiting for the judge as long as it takes (its own timeouts and retries)."""
        start = time.perf_counter()
        return self._counted(await self._grade(inp), start)

    async def _grade(self, inp: GradeInput) -> GradeResult:
        inp, evidence = await self._evidence(inp)
        if evidence.non_answer or self.judge is None:
            return self._without_judge(inp, evidence)
        return self._judged(inp, evidence, await self.judge.judge(inp))

    async def grade_within(
        self, inp: GradeInput, deadline_s: float
    ) -> tuple[GradeResult, Awaitable[GradeResult] | None]:
        """Grade, waiting at most ``deadline_s`` for the judge.

        Returns the result and, when the judge missed the deadline, an awaitable of the final
        result: the judge goes on in the background, and the embedding grading (flagged
        ``judge_pending``) stands until its verdict arrives.
        """
        start = time.perf_counter()
        inp, evidence = await self._evidence(inp)
        if evidence.non_answer or self.judge is None:
            return self._counted(self._without_judge(inp, evidence), start), None
        judging = asyncio.ensure_future(self.judge.judge(inp))
        done, _ = await asyncio.wait({judging}, timeout=max(0.0, deadline_s - (time.perf_counter() - start)))
        if done:
            return self._counted(self._judged(inp, evidence, judging.result()), start), None
        provisional = self._result(
            inp, evidence, None, GradeStatus.embedding_only, MSG_JUDGE_LATE.format(s=round(deadline_s))
        )
        provisional.flags.append("judge_pending")

        async def final() -> GradeResult:
            return self._counted(self._judged(inp, evidence, await judging), start)

        return provisional, final()

    def _counted(self, result: GradeResult, start: float) -> GradeResult:
        GRADING_SECONDS.labels(self.mode).observe(time.perf_counter() - start)
        GRADINGS.labels(result.status.value, self.mode).inc()
        for flag in result.flags:
            REVIEW_FLAGS.labels(flag).inc()
        return result

    async def _evidence(self, inp: GradeInput) -> tuple[GradeInput, EmbeddingEvidence]:
        if not inp.rubric:
            inp = inp.model_copy(update={"rubric": derive_points(inp.reference_answer), "derived_rubric": True})
        return inp, await self._embedding(inp)

    def _without_judge(self, inp: GradeInput, evidence: EmbeddingEvidence) -> GradeResult:
        if evidence.non_answer:
            return self._result(inp, evidence, None, GradeStatus.graded, MSG_NON_ANSWER)
        return self._result(inp, evidence, None, GradeStatus.embedding_only, MSG_EMBEDDING_ONLY_OFF)

    def _judged(self, inp: GradeInput, evidence: EmbeddingEvidence, outcome: JudgeOutcome) -> GradeResult:
        if outcome.status == "ok" and outcome.verdict is not None:
            return self._result(inp, evidence, outcome, GradeStatus.graded, MSG_HYBRID)
        why = (
            "replied with output that could not be parsed"
            if outcome.status == "parse_error"
            else f"could not be reached ({outcome.error or outcome.status})"
        )
        return self._result(inp, evidence, outcome, GradeStatus.embedding_only, MSG_JUDGE_FAILED.format(why=why))

    def needs_judge(self, result: GradeResult) -> bool:
        """Whether ``result`` should get a judge's reading it does not have yet (the judge
        failed or was late); the sweeper regrades such turns once the judge is healthy."""
        return self.judge is not None and result.status is GradeStatus.embedding_only

    def _result(
        self,
        inp: GradeInput,
        evidence: EmbeddingEvidence,
        outcome: JudgeOutcome | None,
        status: GradeStatus,
        message: str,
    ) -> GradeResult:
        verdict = outcome.verdict if outcome is not None and outcome.status == "ok" else None
        points = [p.model_copy() for p in evidence.points]
        flags: list[str] = []
        screened = screen(inp.answer).flagged
        judge_saw_injection = verdict is not None and verdict.injection_attempt and not screened
        if screened or judge_saw_injection:
            flags.append("suspected_injection")
        if outcome is not None and verdict is None:
            flags.append(f"judge_{outcome.status}")
        if not evidence.non_answer and is_off_topic(inp.answer, inp):
            flags.append("off_topic")  # the interview asks no follow-up about it

        judge_score = None
        if verdict is not None:
            judge_score = round_score(verdict.score)
            by_id = {p.id: p for p in verdict.points}
            for p in points:
                jp = by_id.get(p.id)
                if jp is not None:
                    p.judge_verdict = jp.verdict
                    p.judge_quote = jp.quote or None
                    p.verdict = jp.verdict
                    if jp.quote:
                        p.evidence = jp.quote
            w = self.settings.judge_weight
            score = round_score(w * verdict.score + (1 - w) * evidence.score)
            if abs(verdict.score - evidence.score) > self.settings.disagreement_margin:
                flags.append("judge_disagreement")
        else:
            score = round_score(evidence.score)

        if screened:
            # The instruction was removed before scoring; on top of that, an attempt to steer the
            # grader costs a little, so it can never pay off through a quirk of the features.
            score = round_score(score - INJECTION_PENALTY)
        elif judge_saw_injection:
            # The judge reports an attempt the screening missed: its reading may have been swayed,
            # so it can lower the score but not raise it above the embedding evidence.
            score = min(score, round_score(evidence.score))
        score, applied = _apply_caps(score, evidence.caps, points)
        notes = [CAP_MESSAGES[c] for c in applied] + ([MSG_INJECTION] if screened else [])
        unclear = [p for p in points if p.verdict is Verdict.unclear]
        if unclear:
            notes.append(MSG_UNCLEAR.format(n=len(unclear), s="" if len(unclear) == 1 else "s"))
            flags.append("unconfirmed_points")
        if "off_topic" in flags:
            notes.append(MSG_OFF_TOPIC)
        message = " ".join([message, *notes])

        # Each point's evidence is quoted once, on the point; strengths and gaps name points.
        strengths = [p.text for p in points if p.verdict is Verdict.covered]
        gaps = (
            [_gap(p) for p in points if p.verdict in (Verdict.missing, Verdict.wrong)]
            + [f"{p.text} (only partly made)" for p in points if p.verdict is Verdict.partial]
            + [f"{p.text} (not confirmed)" for p in unclear]
        )
        if verdict is not None:
            strengths = verdict.strengths or strengths
            gaps = verdict.gaps or gaps
        improvement = (verdict.improvement if verdict is not None else "") or _improvement(points)
        return GradeResult(
            score=score,
            status=status,
            passed=passed(score),
            points=points,
            embedding_score=round_score(evidence.score),
            judge_score=judge_score,
            reference_similarity=round(evidence.reference_similarity, 3),
            strengths=strengths,
            gaps=gaps,
            improvement=improvement,
            follow_up=(verdict.follow_up or None) if verdict is not None else None,
            flags=flags,
            status_message=message,
            versions=self.versions(judged=verdict is not None, calibration=evidence.calibration_version),
        )


def _apply_caps(score: float, caps: Sequence[str], points: Sequence[PointResult]) -> tuple[float, list[str]]:
    """Apply the embedding grader's caps to the final score; return it and the caps that held.

    A list of terms stays capped whatever a judge says (it states nothing). A misconception
    cap holds while some point is still ``wrong`` after the judge's reading: a judge that read
    the sentence and found it right lifts it.
    """
    applied = []
    still_wrong = any(p.verdict is Verdict.wrong for p in points)
    for cap in caps:
        if cap in SCORE_CAPS and (cap == "keyword_list" or still_wrong):
            score = min(score, SCORE_CAPS[cap])
            applied.append(cap)
    return round_score(score), applied


def _gap(p: PointResult) -> str:
    return f"{p.text} (incorrect)" if p.verdict is Verdict.wrong else f"{p.text} (not addressed)"


def _improvement(points: Sequence[PointResult]) -> str:
    """One concrete next step: the most important rubric point the answer missed."""
    order = {Verdict.wrong: 0, Verdict.missing: 1, Verdict.partial: 2, Verdict.unclear: 3}
    missed = [p for p in points if p.verdict in order]
    if not missed:
        return "All rubric points were covered; tighten the answer with a concrete example."
    worst = min(missed, key=lambda p: (order[p.verdict], p.coverage))
    if worst.verdict is Verdict.wrong:
        return f"Correct this point: {worst.text}"
    if worst.verdict is Verdict.unclear:
        return f"State this point in a sentence of its own, so that it can be confirmed: {worst.text}"
    if worst.verdict is Verdict.partial:
        return f"Make this point explicitly and completely: {worst.text}"
    return f"Add the point you left out: {worst.text}"
