"""Features of an answer against its reference answer, rubric points and question.

Grading is split in two steps so that a whole batch shares one model call:

1. :func:`prepare` cleans the answer (drops sentences that address the grader and sentences
   that only say the question back), splits it into sentences and windows of consecutive
   sentences (character spans of the answer, so evidence is quoted verbatim), and picks the
   rubric (the item's, or points derived from the reference answer).
2. :func:`compute` turns embeddings into named features plus, per rubric point, its
   best-matching answer span. The answer is run through the model *once*
   (:meth:`Encoder.encode_tokens`): sentence and window embeddings are mean-pooled from its
   contextual token vectors, which is what makes batch grading cheap. The reference answer,
   the question and the rubric points are cached bank texts (embedding + token vectors).

Features (all in :data:`FEATURE_NAMES`): cosine to the reference; cosine to the question;
cosine with the question's words left out of the pooling on both sides, and after projecting
out the question's direction; sentence alignment both ways (answer sentences -> reference
and points, points -> answer spans); rubric coverage (weighted, minimum, essential points);
token alignment of content words (BERTScore-style precision/recall over contextual token
vectors, question words excluded); lexical overlap of stemmed content words with the
reference minus the question's words; the share of the answer copied from the question;
lengths.

A rubric point's coverage is the token recall of its content words (question words excluded)
by the best answer span (sentence or window of up to three), so copying the question earns
nothing there either; that span is the point's evidence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from app.grading.embedding import TokenEmbeddings
from app.grading.injection import screen, split_sentences
from app.grading.rubric import derive_points
from app.grading.schemas import GradeInput, RubricPoint
from app.grading.triage import is_non_answer
from app.tokens import STOPWORDS, content_words, new_content_words, stem, words

MAX_WINDOW = 3
"""Answer spans are single sentences and runs of up to this many consecutive sentences."""
QUESTION_PENALTY = 1.0
"""How much of a span's excess similarity to the question is taken off its point match."""
QUESTION_FLOOR = 0.7
"""Only similarity to the question above this (and above the point's own) counts as excess."""
MAX_SPANS = 60
"""Cap on spans per answer, to bound the cost of very long answers."""

FEATURE_NAMES: tuple[str, ...] = (
    "cos_ref",
    "cos_question",
    "cos_ref_question",
    "cos_demoted",
    "cos_residual",
    "align_precision",
    "align_recall",
    "align_f1",
    "rubric_coverage",
    "rubric_min",
    "rubric_tok_coverage",
    "rubric_tok_min",
    "essential_coverage",
    "tok_precision",
    "tok_recall",
    "tok_f1",
    "lex_recall",
    "lex_precision",
    "lex_f1",
    "question_copy",
    "log_len_answer",
    "len_ratio",
    "n_sentences",
)
"""Every feature :func:`compute` produces (all are reported in the evidence)."""

LENGTH_FEATURES = ("log_len_answer", "len_ratio", "n_sentences")
SCORING_FEATURES: tuple[str, ...] = tuple(f for f in FEATURE_NAMES if f not in LENGTH_FEATURES)
"""The features the score is fitted on. Length is left out: it adds nothing on Mohler under
cross-validation (r 0.652 without it, 0.645 with it) and would let padding raise a score."""


@dataclass
class Prepared:
    """One grading item, cleaned and split."""

    item: GradeInput
    answer: str
    non_answer: bool
    points: list[RubricPoint]
    spans: list[tuple[int, int]] = field(default_factory=list)
    """Character spans of ``answer``: its sentences first, then windows of sentences."""
    n_sentences: int = 0
    pleas_dropped: bool = False
    """Sentences off the topic were dropped from an answer that tried to instruct the grader."""

    @property
    def bank_texts(self) -> list[str]:
        """Question-side texts embedded through the cache (question and rubric points)."""
        if self.non_answer:
            return []
        texts = [self.item.question]
        for p in self.points:
            texts.extend((p.text, *p.variants, *p.misconceptions))
        return texts

    def span_text(self, i: int) -> str:
        start, end = self.spans[i]
        return self.answer[start:end]


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text`` (as :func:`split_sentences` cuts them)."""
    spans: list[tuple[int, int]] = []
    cursor = 0
    for sentence in split_sentences(text):
        start = text.find(sentence, cursor)
        if start < 0:  # split_sentences only strips; cannot happen, but stay safe
            continue
        spans.append((start, start + len(sentence)))
        cursor = start + len(sentence)
    return spans


def _spans(text: str) -> tuple[list[tuple[int, int]], int]:
    sentences = sentence_spans(text)
    spans = list(sentences[:MAX_SPANS])
    for width in range(2, MAX_WINDOW + 1):
        for i in range(len(sentences) - width + 1):
            if len(spans) >= MAX_SPANS:
                return spans, len(sentences)
            spans.append((sentences[i][0], sentences[i + width - 1][1]))
    return spans, len(sentences)


def drop_question_echo(answer: str, question: str) -> str:
    """``answer`` without the sentences that only say back words of the question.

    A restated question carries no answer, and must not raise the similarity to a reference
    that shares the question's topic. The answer is left as it is when nothing would remain
    (the triage then decides) or when no sentence is an echo.
    """
    sentences = split_sentences(answer)
    if len(sentences) < 2:
        return answer
    kept = [s for s in sentences if new_content_words(s, question)]
    if not kept or len(kept) == len(sentences):
        return answer
    return " ".join(kept)


def is_off_topic(answer: str, item: GradeInput) -> bool:
    """Whether ``answer`` shares no content word with the question, the reference or the rubric
    (an answer about something else entirely: there is nothing in it to probe further)."""
    said = set(content_words(answer))
    return bool(said) and not said.intersection(_topic_words(item))


def _topic_words(item: GradeInput) -> set[str]:
    """Content words of the question, the reference and the rubric: what an answer is about."""
    return set(content_words(" ".join([item.question, item.reference_answer, *(p.text for p in item.rubric)])))


def drop_off_topic(answer: str, item: GradeInput) -> str:
    """``answer`` without the sentences that share no content word with the question, the
    reference or the rubric. Used on answers that tried to instruct the grader, whose
    pleasantries and pleas ("Many thanks in advance, it means a lot.") are what remains of the
    message once the instruction is gone, and must not change the score either way."""
    vocabulary = _topic_words(item)
    sentences = split_sentences(answer)
    kept = [s for s in sentences if vocabulary.intersection(content_words(s))]
    return " ".join(kept) if kept and len(kept) < len(sentences) else answer


def prepare(item: GradeInput, *, drop_pleas: bool = True) -> Prepared:
    """Clean and split one item: instructions to the grader (with what remains of their
    message, unless ``drop_pleas`` is false) and sentences that only repeat the question are
    dropped before anything is scored."""
    screening = screen(item.answer or "")
    answer = screening.graded.strip()
    pleas_dropped = False
    if screening.flagged and drop_pleas:
        kept = drop_off_topic(answer, item)
        answer, pleas_dropped = kept, kept != answer
    answer = drop_question_echo(answer, item.question)
    points = list(item.rubric) or derive_points(item.reference_answer)
    if is_non_answer(answer, item.question):
        return Prepared(item=item, answer=answer, non_answer=True, points=points)
    spans, n_sentences = _spans(answer)
    return Prepared(
        item=item,
        answer=answer,
        non_answer=False,
        points=points,
        spans=spans,
        n_sentences=n_sentences,
        pleas_dropped=pleas_dropped,
    )


@dataclass
class PointMatch:
    point: RubricPoint
    similarity: float
    evidence: str | None


@dataclass
class Computed:
    features: dict[str, float]
    matches: list[PointMatch]


def _overlap(a: set[str], b: set[str]) -> tuple[float, float, float]:
    common = len(a & b)
    recall = common / len(b) if b else 0.0
    precision = common / len(a) if a else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return recall, precision, f1


def _token_masks(te: TokenEmbeddings, asked: set[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per token: (not a question word, and a content word that is not a question word)."""
    word_list = te.words
    not_asked_w = np.array([stem(w) not in asked and w.isalnum() for w in word_list], dtype=bool)
    content_w = np.array(
        [w.isalnum() and w not in STOPWORDS and stem(w) not in asked for w in word_list],
        dtype=bool,
    )
    if not word_list:
        empty = np.zeros(0, dtype=bool)
        return empty, empty
    return not_asked_w[te.word_index], content_w[te.word_index]


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def _unit_rows(m: np.ndarray) -> np.ndarray:
    m = m.astype(np.float32)
    n = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.maximum(n, 1e-8)


@dataclass
class _Views:
    """The answer seen as vectors, shared by the feature groups below."""

    answer: TokenEmbeddings
    reference: TokenEmbeddings
    question: np.ndarray
    """The question's sentence vector."""
    asked: set[str]
    """Stems of the question's words (answer words the question already says earn nothing)."""
    span_idx: list[int]
    """Indices (into ``prep.spans``) of the spans that have token vectors."""
    span_m: np.ndarray
    """Pooled vectors of those spans (sentences first, then windows)."""
    sent_m: np.ndarray
    """The sentence rows of ``span_m``."""
    point_te: list[TokenEmbeddings]
    point_m: np.ndarray
    """Sentence vectors of the rubric points (the reference's, when there are none)."""
    cand_m: np.ndarray
    """``span_m`` plus the whole answer: every candidate evidence for a point."""
    a_content: np.ndarray
    """Mask of the answer's content tokens that are not question words."""


def _views(
    prep: Prepared, answer: TokenEmbeddings, reference: TokenEmbeddings, bank: Mapping[str, TokenEmbeddings]
) -> _Views:
    a, r = answer.embedding, reference.embedding
    asked = {stem(w) for w in words(prep.item.question)}
    pooled = [answer.pool(start=s, end=e) for s, e in prep.spans]
    span_idx = [i for i, v in enumerate(pooled) if v is not None]
    span_vecs = [v for v in pooled if v is not None]
    span_m = np.stack(span_vecs) if span_vecs else a[None, :]
    n_sent = sum(1 for i in span_idx if i < prep.n_sentences)
    point_te = [bank[p.text] for p in prep.points]
    point_m = np.stack([t.embedding for t in point_te]) if point_te else r[None, :]
    return _Views(
        answer=answer,
        reference=reference,
        question=bank[prep.item.question].embedding,
        asked=asked,
        span_idx=span_idx,
        span_m=span_m,
        sent_m=span_m[: max(1, n_sent)],
        point_te=point_te,
        point_m=point_m,
        cand_m=np.vstack([span_m, a[None, :]]),
        a_content=_token_masks(answer, asked)[1],
    )


def _whole_text(v: _Views) -> dict[str, float]:
    """Cosines of the whole answer: with the reference, the question, and with the question's
    own words or direction taken out ("question demoting")."""
    a, r, q = v.answer.embedding, v.reference.embedding, v.question
    a_free, _ = _token_masks(v.answer, v.asked)
    r_free, _ = _token_masks(v.reference, v.asked)
    a_dem, r_dem = v.answer.pool(mask=a_free), v.reference.pool(mask=r_free)
    a_res, r_res = a - (a @ q) * q, r - (r @ q) * q
    norm = float(np.linalg.norm(a_res) * np.linalg.norm(r_res))
    return {
        "cos_ref": float(a @ r),
        "cos_question": float(a @ q),
        "cos_ref_question": float(r @ q),
        "cos_demoted": float(a_dem @ r_dem) if a_dem is not None and r_dem is not None else 0.0,
        "cos_residual": float(a_res @ r_res) / norm if norm > 1e-8 else 0.0,
    }


def _sentence_alignment(v: _Views) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Sentences aligned both ways with the rubric points and the reference (BERTScore-like):
    precision, recall, each point's similarities to every candidate span, and its best one."""
    target_m = np.vstack([v.point_m, v.reference.embedding[None, :]])
    precision = float(np.mean(np.max(v.sent_m @ target_m.T, axis=1)))
    point_sims = v.point_m @ v.cand_m.T  # (points, spans + whole answer)
    best = point_sims.max(axis=1)
    return precision, float(np.mean(best)), point_sims, best


def _token_alignment(v: _Views) -> tuple[float, float]:
    """Token-level alignment of the content words the question does not contain (BERTScore)."""
    r_content = _token_masks(v.reference, v.asked)[1]
    at = _unit_rows(v.answer.vectors[v.a_content])
    rt = _unit_rows(v.reference.vectors[r_content])
    if not (len(at) and len(rt)):
        return 0.0, 0.0
    sims = at @ rt.T
    return float(sims.max(axis=1).mean()), float(sims.max(axis=0).mean())


def _point_matches(prep: Prepared, v: _Views, point_sims: np.ndarray) -> list[PointMatch]:
    """Per rubric point: how well the point's content words (not the question's) are matched by
    the content words of the best answer span (sentence or window) - its coverage, with that
    span as the evidence. Points made only of question words fall back to the span embedding
    similarity, minus any excess similarity of the span to the question itself."""
    at = _unit_rows(v.answer.vectors[v.a_content])
    a_offsets = v.answer.offsets[v.a_content]
    span_masks = [(a_offsets[:, 0] >= prep.spans[i][0]) & (a_offsets[:, 1] <= prep.spans[i][1]) for i in v.span_idx]
    floor = np.maximum(v.point_m @ v.question, QUESTION_FLOOR)[:, None]
    excess = np.maximum(0.0, (v.cand_m @ v.question)[None, :] - floor)
    judged = point_sims - QUESTION_PENALTY * excess
    matches: list[PointMatch] = []
    for i, (point, pte) in enumerate(zip(prep.points, v.point_te, strict=True)):
        _, p_content = _token_masks(pte, v.asked)
        pt = _unit_rows(pte.vectors[p_content])
        sim: float | None = None
        evidence = None
        if len(pt) and len(at) and span_masks:
            token_sims = pt @ at.T
            per_span = [float(token_sims[:, m].max(axis=1).mean()) if m.any() else -1.0 for m in span_masks]
            j = int(np.argmax(per_span))
            if per_span[j] > -1.0:
                sim, evidence = per_span[j], prep.span_text(v.span_idx[j])
        if sim is None:
            sim = float(judged[i].max())
            if v.span_idx:
                evidence = prep.span_text(v.span_idx[int(np.argmax(judged[i, : len(v.span_idx)]))])
        matches.append(PointMatch(point=point, similarity=sim, evidence=evidence))
    return matches


def _coverage(
    prep: Prepared, matches: list[PointMatch], best: np.ndarray, recall: float, tok_r: float
) -> dict[str, float]:
    """Weighted rubric coverage: by sentence vectors (``best``) and by token matches."""
    weights = np.array([p.weight for p in prep.points], dtype=np.float64)
    point_tok = np.array([m.similarity for m in matches], dtype=np.float64)
    if len(weights) and weights.sum() > 0:
        coverage = float(np.dot(weights, best) / weights.sum())
        tok_coverage = float(np.dot(weights, point_tok) / weights.sum())
        tok_min = float(point_tok.min())
        essential = [i for i, p in enumerate(prep.points) if p.essential]
        essential_cov = float(np.mean(point_tok[essential])) if essential else tok_coverage
    else:
        coverage = recall
        tok_coverage = essential_cov = tok_min = tok_r
    return {
        "rubric_coverage": coverage,
        "rubric_min": float(np.min(best)) if len(best) else recall,
        "rubric_tok_coverage": tok_coverage,
        "rubric_tok_min": tok_min,
        "essential_coverage": essential_cov,
    }


def _lexical(prep: Prepared) -> dict[str, float]:
    """Word overlap with the reference (question words left out), question copying, length."""
    item = prep.item
    q_words = set(content_words(item.question))
    a_all = content_words(prep.answer)
    lex_recall, lex_precision, lex_f1 = _overlap(
        set(a_all) - q_words, set(content_words(item.reference_answer)) - q_words
    )
    n_answer = len(words(prep.answer))
    n_reference = len(words(item.reference_answer))
    return {
        "lex_recall": lex_recall,
        "lex_precision": lex_precision,
        "lex_f1": lex_f1,
        "question_copy": sum(w in q_words for w in a_all) / len(a_all) if a_all else 0.0,
        "log_len_answer": math.log1p(n_answer),
        "len_ratio": math.log((n_answer + 1) / (n_reference + 1)),
        "n_sentences": float(prep.n_sentences),
    }


def compute(
    prep: Prepared,
    answer: TokenEmbeddings,
    reference: TokenEmbeddings,
    bank: Mapping[str, TokenEmbeddings],
) -> Computed:
    """Features of a prepared (non-empty) answer, by group: whole-text cosines, sentence and
    token alignment, rubric coverage with each point's evidence, word overlap and length.

    ``answer`` and ``reference`` are the token embeddings of ``prep.answer`` and of the
    reference answer; ``bank`` maps the question and each rubric point text to its token
    embeddings.
    """
    v = _views(prep, answer, reference, bank)
    precision, recall, point_sims, best = _sentence_alignment(v)
    tok_p, tok_r = _token_alignment(v)
    matches = _point_matches(prep, v, point_sims)
    features = {
        **_whole_text(v),
        "align_precision": precision,
        "align_recall": recall,
        "align_f1": _f1(precision, recall),
        **_coverage(prep, matches, best, recall, tok_r),
        "tok_precision": tok_p,
        "tok_recall": tok_r,
        "tok_f1": _f1(tok_p, tok_r),
        **_lexical(prep),
    }
    return Computed(features=features, matches=matches)
