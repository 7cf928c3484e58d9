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
from dataclasses import dataclass

import numpy as np

from app.grading.calibration import Calibration
from app.grading.embedding import Encoder, TokenEmbeddings
from app.grading.features import Computed, Prepared, compute, prepare
from app.grading.schemas import EmbeddingEvidence, GradeInput, PointResult, Verdict


@dataclass
class Analysis:
    """One answer's prepared form and (unless it is a non-answer) its features."""

    prepared: Prepared
    computed: Computed | None


def analyse(encoder: Encoder, items: Sequence[GradeInput]) -> list[Analysis]:
    """Features of every item: one model call for all the answers, plus one for the bank
    texts (reference answers, questions, rubric points) that are not cached yet."""
    preps = [prepare(item) for item in items]
    live = [p for p in preps if not p.non_answer]
    if not live:
        return [Analysis(p, None) for p in preps]
    bank_texts = list(
        dict.fromkeys(t for p in live for t in (p.item.reference_answer, *p.bank_texts))
    )
    bank = dict(zip(bank_texts, encoder.encode_tokens_cached(bank_texts), strict=True))
    answers = list(dict.fromkeys(p.answer for p in live))
    answer_te: dict[str, TokenEmbeddings] = dict(
        zip(answers, encoder.encode_tokens(answers), strict=True)
    )
    out = []
    for p in preps:
        if p.non_answer:
            out.append(Analysis(p, None))
        else:
            computed = compute(p, answer_te[p.answer], bank[p.item.reference_answer], bank)
            out.append(Analysis(p, computed))
    return out


class EmbeddingGrader:
    """Scores answers from embedding evidence; thread-safe (the encoder serialises the model)."""

    def __init__(self, encoder: Encoder, calibration: Calibration | None = None) -> None:
        self.encoder = encoder
        self.calibration = calibration if calibration is not None else Calibration.load()

    def analyse_batch(self, items: Sequence[GradeInput]) -> list[Analysis]:
        return analyse(self.encoder, items)

    def grade_batch(self, items: Sequence[GradeInput]) -> list[EmbeddingEvidence]:
        """Grade many answers together (one model call for all their texts when warm)."""
        return [self._evidence(a) for a in self.analyse_batch(items)]

    def grade(self, item: GradeInput) -> EmbeddingEvidence:
        return self.grade_batch([item])[0]

    def _evidence(self, analysis: Analysis) -> EmbeddingEvidence:
        cal = self.calibration
        prep, computed = analysis.prepared, analysis.computed
        if computed is None:
            return EmbeddingEvidence(
                score=0.0,
                reference_similarity=0.0,
                points=[
                    PointResult(
                        id=p.id, text=p.text, verdict=Verdict.missing, coverage=0.0
                    )
                    for p in prep.points
                ],
                features={},
                model=self.encoder.name,
                calibration_version=cal.version,
                non_answer=True,
            )
        points = []
        for match in computed.matches:
            coverage = cal.coverage(match.similarity)
            verdict = cal.verdict(coverage)
            points.append(
                PointResult(
                    id=match.point.id,
                    text=match.point.text,
                    verdict=verdict,
                    coverage=float(np.clip(coverage, 0.0, 1.0)),
                    evidence=match.evidence if verdict != Verdict.missing else None,
                )
            )
        features = {k: round(float(v), 6) for k, v in computed.features.items()}
        return EmbeddingEvidence(
            score=cal.predict(computed.features),
            reference_similarity=round(float(computed.features["cos_ref"]), 6),
            points=points,
            features=features,
            model=self.encoder.name,
            calibration_version=cal.version,
            non_answer=False,
        )
