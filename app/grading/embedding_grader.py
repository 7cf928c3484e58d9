"""The embedding grader: a calibrated 0-5 score with per-rubric-point evidence.

For a batch of answers, :meth:`EmbeddingGrader.grade_batch` runs the model once over all the
answers (sentence and window embeddings are pooled from each answer's token vectors), takes
reference answers, questions and rubric points from the encoder's cache (computed once per
bank version), computes the features of :mod:`app.grading.features` and maps them to a score
with the committed :class:`Calibration`.

Sentences that address the grader are removed before anything is scored, so an injected
instruction can never raise a score. Non-answers ("I don't know", empty, the question copied
back) score 0 without any model call.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
from threadpoolctl import ThreadpoolController

from app.grading.calibration import RUBRIC_PATH, Calibration
from app.grading.claims import Structure, structure
from app.grading.embedding import Encoder, TokenEmbeddings
from app.grading.features import Computed, Prepared, compute, prepare
from app.grading.pair_model import PairModel, PairText, question_stems
from app.grading.rubric import derive_points
from app.grading.schemas import EmbeddingEvidence, GradeInput, PointResult, Verdict
from app.grading.verdicts import (
    SCORE_CAPS,
    AnswerSpans,
    PointJudgement,
    judge_points,
    pair_features,
)


@dataclass
class Analysis:
    """One answer's prepared form and (unless it is a non-answer) its features, point
    judgements and sentence structure."""

    prepared: Prepared
    computed: Computed | None
    judgements: list[PointJudgement] | None = None
    structure: Structure | None = None


def analyse(
    encoder: Encoder, items: Sequence[GradeInput], pair: PairModel | None = None, *, drop_pleas: bool = True
) -> list[Analysis]:
    """Features of every item: one model call for all the answers, plus one for the bank
    texts (reference answers, questions, rubric points, variants, misconceptions) that are
    not cached yet. With a pair head, each rubric point also gets its verdict from it."""
    preps = [prepare(item, drop_pleas=drop_pleas) for item in items]
    live = [p for p in preps if not p.non_answer]
    if not live:
        return [Analysis(p, None) for p in preps]
    bank_texts = list(dict.fromkeys(t for p in live for t in (p.item.reference_answer, *p.bank_texts)))
    bank = dict(zip(bank_texts, encoder.encode_tokens_cached(bank_texts), strict=True))
    answers = list(dict.fromkeys(p.answer for p in live))
    answer_te: dict[str, TokenEmbeddings] = dict(zip(answers, encoder.encode_tokens(answers), strict=True))
    with _one_blas_thread():
        return [_analysis(p, answer_te, bank, pair) for p in preps]


_BLAS = ThreadpoolController()


def _one_blas_thread() -> AbstractContextManager[object]:
    """The per-answer numpy work (features, the pair head) is many small matrix products: with
    several BLAS threads their spinning competes with the model's own threads (measured: raw
    encode p50 34 ms against 14 ms on two cores), so it runs on one."""
    return _BLAS.limit(limits=1, user_api="blas")


def _analysis(
    p: Prepared, answer_te: dict[str, TokenEmbeddings], bank: dict[str, TokenEmbeddings], pair: PairModel | None
) -> Analysis:
    if p.non_answer:
        return Analysis(p, None)
    te = answer_te[p.answer]
    computed = compute(p, te, bank[p.item.reference_answer], bank)
    shape = structure(p.answer)
    computed.features["statement_share"] = shape.statement_share
    judgements = None
    if pair is not None:
        asked = question_stems(p.item.question)
        spans = AnswerSpans.of(te, pair, p.spans, p.n_sentences)
        judgements = judge_points(pair, p.points, spans, bank, asked)
        whole = pair.view(PairText.of(te))
        ref = pair.prob(pair.text(bank[p.item.reference_answer]), whole, asked)
        computed.features.update(pair_features(judgements, ref))
    return Analysis(p, computed, judgements, shape)


class EmbeddingGrader:
    """Scores answers from embedding evidence; thread-safe (the encoder serialises the model)."""

    def __init__(
        self,
        encoder: Encoder,
        calibration: Calibration | None = None,
        pair: PairModel | None = None,
        rubric_calibration: Calibration | None = None,
    ) -> None:
        """``calibration`` scores answers against a reference answer alone, ``rubric_calibration``
        answers against a rubric written for the question (both default to the shipped v3;
        given only ``calibration``, it serves both)."""
        self.encoder = encoder
        if calibration is None:
            calibration = Calibration.load()
            rubric_calibration = rubric_calibration or Calibration.load(RUBRIC_PATH)
        self.calibration = calibration
        self.rubric_calibration = rubric_calibration or calibration
        self.pair = pair if pair is not None else PairModel.load(self.calibration.pair_version)

    def calibration_for(self, item: GradeInput) -> Calibration:
        authored = bool(item.rubric) and not item.derived_rubric
        return self.rubric_calibration if authored else self.calibration

    def analyse_batch(self, items: Sequence[GradeInput]) -> list[Analysis]:
        return analyse(self.encoder, items, self.pair)

    def grade_batch(self, items: Sequence[GradeInput]) -> list[EmbeddingEvidence]:
        """Grade many answers together (one model call for all their texts when warm).

        An answer that tried to instruct the grader is graded without what remains of its
        message (pleas, pleasantries: the sentences off the topic) and also with it, and keeps
        the lower score: a shorter text can score higher, so neither way may reward the attempt."""
        analyses = self.analyse_batch(items)
        evidence = [self._evidence(a) for a in analyses]
        again = [i for i, a in enumerate(analyses) if a.prepared.pleas_dropped]
        if again:
            whole = analyse(self.encoder, [items[i] for i in again], self.pair, drop_pleas=False)
            for i, a in zip(again, whole, strict=True):
                other = self._evidence(a)
                if other.score < evidence[i].score:
                    evidence[i] = other
        return evidence

    def grade(self, item: GradeInput) -> EmbeddingEvidence:
        return self.grade_batch([item])[0]

    def preload(self, items: Sequence[GradeInput], chunk: int = 64) -> int:
        """Embed ahead of time every question-side text the grading of ``items`` reads
        (references, questions, rubric points, variants, misconceptions), through the
        encoder's caches: from its disk cache when they were embedded before (keyed on the
        model and each text), by the model otherwise. Then grade one answer, so the model's
        first call is not paid by a candidate either. Returns how many texts are held."""
        texts: dict[str, None] = {}
        for item in items:
            texts[item.reference_answer] = None
            texts[item.question] = None
            for point in item.rubric or derive_points(item.reference_answer):
                for text in (point.text, *point.variants, *point.misconceptions):
                    texts[text] = None
        ordered = list(texts)
        for start in range(0, len(ordered), chunk):
            self.encoder.encode_tokens_cached(ordered[start : start + chunk])
        if items:
            sample = items[0].model_copy(update={"answer": items[0].reference_answer})
            self.grade_batch([sample])
        return len(ordered)

    def _evidence(self, analysis: Analysis) -> EmbeddingEvidence:
        cal = self.calibration_for(analysis.prepared.item)
        prep, computed = analysis.prepared, analysis.computed
        if computed is None:
            return EmbeddingEvidence(
                score=0.0,
                reference_similarity=0.0,
                points=[PointResult(id=p.id, text=p.text, verdict=Verdict.missing, coverage=0.0) for p in prep.points],
                features={},
                model=self.encoder.name,
                calibration_version=cal.version,
                non_answer=True,
            )
        points = []
        judged: Sequence[PointJudgement | None] = analysis.judgements or [None] * len(computed.matches)
        for match, j in zip(computed.matches, judged, strict=True):
            coverage = cal.coverage(match.similarity)
            if j is None:  # no pair head: the verdict follows lexical-semantic coverage alone
                verdict, evidence, confidence, misconception = cal.verdict(coverage), match.evidence, None, None
            else:
                verdict, evidence, confidence, misconception = j.verdict, j.evidence, j.confidence, j.misconception
                if verdict in (Verdict.unclear, Verdict.missing):
                    # The head did not confirm the point. Where the answer's words cover it, the
                    # two signals disagree: not confirmed. Where they barely touch it: missing.
                    if coverage >= cal.partial_threshold:
                        # Neither signal can be trusted over the other: no confidence either way.
                        if verdict is Verdict.missing:
                            confidence = 0.0
                        # The head's closest sentence, else the span whose words cover the point.
                        verdict, evidence = Verdict.unclear, j.closest or match.evidence
                    else:
                        verdict, evidence = Verdict.missing, None
            points.append(
                PointResult(
                    id=match.point.id,
                    text=match.point.text,
                    verdict=verdict,
                    coverage=float(np.clip(coverage, 0.0, 1.0)),
                    evidence=evidence if verdict != Verdict.missing else None,
                    confidence=confidence,
                    misconception=misconception,
                )
            )
        caps = []
        if analysis.structure is not None and analysis.structure.keyword_list:
            caps.append("keyword_list")
        wrong = [m.point for p, m in zip(points, computed.matches, strict=True) if p.verdict is Verdict.wrong]
        if any(point.essential for point in wrong):
            caps.append("wrong_essential")
        elif wrong:
            caps.append("wrong_point")
        score = min([cal.predict(computed.features), *(SCORE_CAPS[c] for c in caps)])
        features = {k: round(float(v), 6) for k, v in computed.features.items()}
        return EmbeddingEvidence(
            score=score,
            caps=caps,
            reference_similarity=round(float(computed.features["cos_ref"]), 6),
            points=points,
            features=features,
            model=self.encoder.name,
            calibration_version=cal.version,
            non_answer=False,
        )
