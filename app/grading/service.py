"""The grading interface the rest of the product uses: embedding evidence + rubric LLM judge.

``Grader.grade`` always returns a :class:`GradeResult` whose status says plainly how it was
made: ``graded`` (judge and embeddings) or ``embedding_only`` (no judge, or the judge failed). It
raises only when even the embedding evidence could not be computed, so the
caller can keep the answer as ``ungraded`` and grade it later.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from app.config import Settings
from app.grading.features import is_off_topic
from app.grading.feedback import (
    MSG_EMBEDDING_ONLY_OFF,
    MSG_HYBRID,
    MSG_JUDGE_FAILED,
    MSG_JUDGE_LATE,
    MSG_NON_ANSWER,
    build_feedback,
    merge_judge_points,
    status_message,
)
from app.grading.injection import screen
from app.grading.rubric import derive_points
from app.grading.schemas import (
    PASS_MARK,
    EmbeddingEvidence,
    GradeFlag,
    GradeInput,
    GradeResult,
    GraderVersions,
    GradeStatus,
    JudgeOutcome,
    JudgeStatus,
    JudgeVerdict,
    LLMCallRecord,
    PointResult,
    Verdict,
    round_score,
)
from app.grading.verdicts import SCORE_CAPS
from app.observability import GRADING_SECONDS, GRADINGS, REVIEW_FLAGS

if TYPE_CHECKING:
    from app.grading.batching import MicroBatcher
    from app.grading.embedding_grader import EmbeddingGrader
    from app.grading.judge import Judge

AuditSink = Callable[[LLMCallRecord], Awaitable[None] | None]

INJECTION_PENALTY = 0.3
"""What an attempt to steer the grader costs, on top of earning nothing."""


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
        provisional.flags.append(GradeFlag.judge_pending)

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
        if outcome.status is JudgeStatus.ok and outcome.verdict is not None:
            return self._result(inp, evidence, outcome, GradeStatus.graded, MSG_HYBRID)
        why = (
            "replied with output that could not be parsed"
            if outcome.status is JudgeStatus.parse_error
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
        """The grading: the judge's point verdicts over the embedding's, the blended and capped
        score, the flags for a reviewer and the candidate's feedback."""
        verdict = outcome.verdict if outcome is not None and outcome.status is JudgeStatus.ok else None
        points = merge_judge_points(evidence.points, verdict)
        screened = screen(inp.answer).flagged
        judge_saw_injection = verdict is not None and verdict.injection_attempt and not screened
        score, disagree = self._blend(evidence, verdict, screened=screened, judge_saw_injection=judge_saw_injection)
        score, applied = _apply_caps(score, evidence.caps, points)
        off_topic = not evidence.non_answer and is_off_topic(inp.answer, inp)

        flags: list[GradeFlag] = []
        if screened or judge_saw_injection:
            flags.append(GradeFlag.suspected_injection)
        if outcome is not None and verdict is None:
            flags.append(GradeFlag(f"judge_{outcome.status.value}"))
        if off_topic:
            flags.append(GradeFlag.off_topic)  # the interview asks no follow-up about it
        if disagree:
            flags.append(GradeFlag.judge_disagreement)
        if any(p.verdict is Verdict.unclear for p in points):
            flags.append(GradeFlag.unconfirmed_points)

        feedback = build_feedback(points, verdict)
        return GradeResult(
            score=score,
            status=status,
            passed=score >= PASS_MARK,
            points=points,
            embedding_score=round_score(evidence.score),
            judge_score=round_score(verdict.score) if verdict is not None else None,
            reference_similarity=round(evidence.reference_similarity, 3),
            strengths=feedback.strengths,
            gaps=feedback.gaps,
            improvement=feedback.improvement,
            follow_up=(verdict.follow_up or None) if verdict is not None else None,
            flags=flags,
            non_answer=evidence.non_answer,
            judge_status=outcome.status if outcome is not None else None,
            status_message=status_message(message, points, applied, injection=screened, off_topic=off_topic),
            versions=self.versions(judged=verdict is not None, calibration=evidence.calibration_version),
        )

    def _blend(
        self, evidence: EmbeddingEvidence, verdict: JudgeVerdict | None, *, screened: bool, judge_saw_injection: bool
    ) -> tuple[float, bool]:
        """The score before caps, and whether judge and embedding evidence disagree."""
        if verdict is None:
            score, disagree = round_score(evidence.score), False
        else:
            w = self.settings.judge_weight
            score = round_score(w * verdict.score + (1 - w) * evidence.score)
            disagree = abs(verdict.score - evidence.score) > self.settings.disagreement_margin
        if screened:
            # The instruction was removed before scoring; on top of that, an attempt to steer the
            # grader costs a little, so it can never pay off through a quirk of the features.
            score = round_score(score - INJECTION_PENALTY)
        elif judge_saw_injection:
            # The judge reports an attempt the screening missed: its reading may have been swayed,
            # so it can lower the score but not raise it above the embedding evidence.
            score = min(score, round_score(evidence.score))
        return score, disagree


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
