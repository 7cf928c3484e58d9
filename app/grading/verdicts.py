"""Per rubric point: does the answer say it, say the opposite, or can the evidence not tell?

For every rubric point the pair head (:mod:`app.grading.pair_model`) reads the answer's best
spans (single sentences and runs of up to three, the :data:`TOP_SPANS` closest to the claim by
embedding) against the point and each of its plain-language variants: the best probability is
the point's *support*. It reads the same spans against the point's misconceptions: the best
probability is its *contradiction*. Then:

* ``wrong``: the contradiction is at least :data:`WRONG_MIN`, beats the support by
  :data:`WRONG_MARGIN`, and the span matches the words only the misconception has better than
  the words only the point has (:meth:`AnswerSpans.contrast`, at least :data:`CONTRAST_MIN`):
  the answer states the misconception; the sentence is quoted.
* ``covered``: support of at least :data:`COVERED_MIN`.
* ``missing``: support under :data:`MISSING_MAX`.
* ``unclear``: anything between: the embedding evidence cannot decide, and the candidate is told
  the point is not confirmed (an LLM judge or a reviewer would settle it).

Each verdict carries a confidence in 0-1: how far the deciding probability is from a coin toss.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from app.grading.claims import KEYWORD_LIST_CAP
from app.grading.embedding import TokenEmbeddings
from app.grading.pair_model import PairModel, PairText, member
from app.grading.schemas import PASS_MARK, RubricPoint, Verdict

TOP_SPANS = 2
"""Answer spans read per claim: the ones closest to it by embedding. Reading 4 (and every
variant) cost 45 ms an answer on bank rubrics here against about 25 ms, for gold-set figures
within 0.01 of these."""
COVERED_MIN = 0.6
MISSING_MAX = 0.3
WRONG_MIN = 0.5
WRONG_MARGIN = 0.0
CONTRAST_MIN = 0.1
"""``wrong`` also needs the span to match the misconception's own words better than the point's.

The thresholds were set on the gold set's train split (answers that state a misconception
against correct ones). With the common-subject check (:data:`SHARED_MIN`) they flag 6% of the
swapped-fact and misconception answers there and 4% of the correct ones; without it, 37% and
20%. (A margin of 0.1 with contrast 0.05 gives 6% and 2%, but then the textbook swap of
precision and recall passes: the head reads both sentences as stating the point.) So ``wrong``
is rare and seldom false; the pair head's sense of direction is the limit, and most swapped
facts are caught, if at all, through a lower support and score rather than a verdict."""
SHARED_MIN = 0.8
"""A sentence contests a point only if it has this share of the words that the point and the
misconception share (their common subject: "precision", "share", "TP")."""
WRONG_ESSENTIAL_CAP = 1.5
"""The highest score of an answer that states a misconception of an essential point."""
WRONG_POINT_CAP = round(PASS_MARK - 0.6, 1)
"""The highest score of an answer that states any misconception: below the pass mark."""
SCORE_CAPS = {"keyword_list": KEYWORD_LIST_CAP, "wrong_essential": WRONG_ESSENTIAL_CAP, "wrong_point": WRONG_POINT_CAP}
"""Each cap the embedding grader can set (``EmbeddingEvidence.caps``) and the score it caps at."""


@dataclass(frozen=True)
class PointJudgement:
    point: RubricPoint
    support: float
    contradiction: float
    verdict: Verdict
    confidence: float
    evidence: str | None
    misconception: str | None = None
    """The misconception the answer states, when the verdict is ``wrong``."""
    contrast: float = 0.0
    """Distinctive-word contrast of the best misconception span (> 0 leans to the misconception)."""
    closest: str | None = None
    """The sentence that comes closest to stating the point, whatever the verdict (what a point
    not confirmed quotes when the words of the answer, not the head, put it there)."""


@dataclass(frozen=True)
class AnswerSpans:
    """An answer's spans as the pair head reads them (texts and their token views)."""

    texts: list[str]
    views: list[PairText]
    embeddings: np.ndarray
    sentence: np.ndarray
    """Per span: True for a single sentence (False for a window of several)."""
    bounds: list[tuple[int, int]] = field(default_factory=list)
    """Per span: its ``(start, end)`` characters in the answer."""
    _probs: dict[tuple[int, int], tuple[PairText, float]] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(
        cls, answer: TokenEmbeddings, model: PairModel, spans: Sequence[tuple[int, int]], n_sentences: int
    ) -> AnswerSpans:
        """``spans`` are the answer's sentences (the first ``n_sentences``), then windows."""
        whole = model.view(PairText.of(answer))  # answers are read once: not cached
        texts, views, sentence, bounds = [], [], [], []
        for i, (start, end) in enumerate(spans):
            view = whole.span(answer, start, end)
            if view is not None:
                texts.append(answer.text[start:end])
                views.append(view)
                sentence.append(i < n_sentences)
                bounds.append((start, end))
        if not views:
            texts, views, sentence, bounds = [answer.text], [whole], [True], [(0, len(answer.text))]
        return cls(
            texts=texts,
            views=views,
            embeddings=np.stack([v.embedding for v in views]),
            sentence=np.array(sentence, dtype=bool),
            bounds=bounds,
        )

    def shortest(self, model: PairModel, claims: Sequence[PairText], i: int, asked: np.ndarray, floor: float) -> int:
        """The span to quote for a verdict read on span ``i``: the sentence inside it that
        states one of ``claims`` with a probability of at least ``floor`` (the best such), or
        ``i`` itself when no single sentence does (the claim needs the whole window)."""
        scored = [(max(self.prob(model, c, j, asked) for c in claims), j) for j in self._sentences_in(i)]
        best = max(scored, default=(0.0, i))
        return best[1] if best[0] >= floor else i

    def _sentences_in(self, i: int) -> list[int]:
        """The single sentences inside window ``i`` (none when span ``i`` is itself a sentence)."""
        if self.sentence[i] or not self.bounds:
            return []
        start, end = self.bounds[i]
        return [j for j, (a, b) in enumerate(self.bounds) if self.sentence[j] and start <= a and b <= end]

    def nearest_sentence(self, claims: Sequence[PairText], i: int) -> int:
        """The sentence inside span ``i`` whose embedding is closest to one of ``claims`` (``i``
        itself if it is a sentence): what to quote when no verdict rests on it (no pair read)."""
        inside = self._sentences_in(i)
        if not inside:
            return i
        sims = self.embeddings[inside] @ np.stack([c.embedding for c in claims]).T
        return inside[int(np.argmax(sims.max(axis=1)))]

    def contrast(self, point: PairText, misconception: PairText, i: int) -> float:
        """How much better span ``i`` matches what only the misconception says than what only
        the point says (their distinctive content words; soft token matching, exact stems 1)."""
        span = self.views[i]
        mine = (misconception.stems >= 0) & ~member(misconception.stems, point.stems)
        theirs = (point.stems >= 0) & ~member(point.stems, misconception.stems)
        shared = np.unique(misconception.stems[(misconception.stems >= 0) & ~mine])
        if not mine.any() or not theirs.any():
            return 0.0
        if len(shared) and member(shared, span.stems).mean() < SHARED_MIN:
            return 0.0  # the sentence is about something else (say recall, not precision)

        def matched(text: PairText, sel: np.ndarray) -> float:
            sims = text.tokens[sel] @ span.tokens.T
            exact = member(text.stems[sel], span.stems)
            return float(np.where(exact, 1.0, sims.max(axis=1)).mean())

        return matched(misconception, mine) - matched(point, theirs)

    def best(
        self, model: PairModel, claim: PairText, asked: np.ndarray, sentences_only: bool = False
    ) -> tuple[float, int]:
        """The highest probability that a span states ``claim``, and that span's index."""
        sims = self.embeddings @ claim.embedding
        if sentences_only and self.sentence.any():
            sims = np.where(self.sentence, sims, -np.inf)
        order = np.argsort(-sims)[:TOP_SPANS]
        order = order[np.isfinite(sims[order])]
        probs = [self.prob(model, claim, int(i), asked) for i in order]
        j = int(np.argmax(probs))
        return float(probs[j]), int(order[j])

    def prob(self, model: PairModel, claim: PairText, i: int, asked: np.ndarray) -> float:
        """``model.prob(claim, span i)``, computed once per answer (points and misconceptions
        ask about the same spans again)."""
        key = (id(claim), i)
        hit = self._probs.get(key)
        if hit is None or hit[0] is not claim:
            hit = self._probs[key] = (claim, model.prob(claim, self.views[i], asked))
        return hit[1]


def judge_points(
    model: PairModel,
    points: Sequence[RubricPoint],
    spans: AnswerSpans,
    bank: Mapping[str, TokenEmbeddings],
    asked: np.ndarray,
) -> list[PointJudgement]:
    """Verdicts of ``points``; ``asked`` are the question's stem numbers (no evidence)."""
    out = []
    for point in points:
        # The point first; its variants only while it is not confirmed (most answers that
        # state a point are confirmed on its own wording, and each read costs a few matrix products).
        support, s_idx = spans.best(model, model.text(bank[point.text]), asked)
        for t in point.variants:
            if support >= COVERED_MIN:
                break
            p_v, i_v = spans.best(model, model.text(bank[t]), asked)
            if p_v > support:
                support, s_idx = p_v, i_v
        # The contest with each misconception is held on single sentences: a window of several
        # can hold the point's words in one sentence and the misconception in the next.
        point_views = [model.text(bank[t]) for t in (point.text, *point.variants)]
        contradiction, c_idx, contrast, there = 0.0, -1, 0.0, 0.0
        wrong_text: str | None = None
        misconception: str | None
        evidence: str | None
        for m in point.misconceptions:
            m_view = model.text(bank[m])
            p, i = spans.best(model, m_view, asked, sentences_only=True)
            if p > contradiction:
                contradiction, c_idx, wrong_text = p, i, m
                contrast = spans.contrast(point_views[0], m_view, i)
                there = max(spans.prob(model, v, i, asked) for v in point_views)
        if contradiction >= WRONG_MIN and contradiction >= there + WRONG_MARGIN and contrast >= CONTRAST_MIN:
            verdict, confidence = Verdict.wrong, contradiction - there
            evidence, misconception = spans.texts[c_idx], wrong_text
        else:
            misconception = None
            if support >= COVERED_MIN:
                verdict = Verdict.covered
            elif support < MISSING_MAX:
                verdict = Verdict.missing
            else:
                verdict = Verdict.unclear
            confidence = abs(2.0 * support - 1.0)
            # Nothing in the answer supports a missing point: nothing is quoted. A covered point
            # quotes the one sentence that states it if there is one (else the window it needs);
            # a point not confirmed quotes the sentence of the window that comes closest.
            evidence = None
            if verdict is Verdict.covered:
                evidence = spans.texts[spans.shortest(model, point_views, s_idx, asked, COVERED_MIN)]
        closest = spans.texts[spans.nearest_sentence(point_views, s_idx)]
        if verdict is Verdict.unclear:
            evidence = closest
        out.append(
            PointJudgement(
                point=point,
                support=round(support, 4),
                contradiction=round(contradiction, 4),
                verdict=verdict,
                confidence=round(min(1.0, max(0.0, confidence)), 3),
                evidence=evidence,
                misconception=misconception,
                contrast=round(contrast, 4),
                closest=closest,
            )
        )
    return out


PAIR_FEATURES = ("pair_ref", "pair_cover", "pair_essential", "pair_min", "pair_wrong", "pair_contra", "pair_contrast")
"""The features :func:`pair_features` adds to the calibrated score."""


def pair_features(judgements: Sequence[PointJudgement], reference_support: float) -> dict[str, float]:
    """The pair head's evidence as features of the calibrated score."""
    if not judgements:
        return {
            "pair_ref": reference_support,
            "pair_cover": reference_support,
            "pair_essential": reference_support,
            "pair_min": reference_support,
            "pair_wrong": 0.0,
            "pair_contra": 0.0,
            "pair_contrast": 0.0,
        }
    w = np.array([j.point.weight for j in judgements], dtype=float)
    s = np.array([j.support for j in judgements], dtype=float)
    essential = [j.support for j in judgements if j.point.essential]
    wrong = max(max(0.0, j.contradiction - j.support) for j in judgements)
    return {
        "pair_ref": reference_support,
        "pair_cover": float(np.dot(w, s) / w.sum()),
        "pair_essential": float(np.mean(essential)) if essential else float(np.dot(w, s) / w.sum()),
        "pair_min": float(s.min()),
        "pair_wrong": float(wrong),
        # Soft evidence of a misconception, below what makes a verdict "wrong": how strongly some
        # sentence states one, and how much its own words lean that way.
        "pair_contra": max(j.contradiction for j in judgements),
        "pair_contrast": max(0.0, max(j.contrast for j in judgements)),
    }
