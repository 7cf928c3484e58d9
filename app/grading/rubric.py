"""Derive rubric points from a reference answer when a question has none.

The reference answer is split into sentences, long sentences into clauses at the connectives
that usually start a new idea ("; ", ", whereas", ", but", ", then", ", so that" ...), fragments
too small to be a point are merged into their neighbour, and the list is capped at
``max_points`` by merging the shortest neighbouring pair. Ids are ``d1..dN``, each of weight
1; the first point is marked essential.
"""

from __future__ import annotations

import re

from app.grading.injection import split_sentences
from app.grading.schemas import RubricPoint
from app.tokens import content_words

_CLAUSE_SPLIT = re.compile(
    r"\s*;\s+|:\s+(?=[A-Za-z])|,\s+(?=(?:whereas|while|but|then|and then|so that|so|"
    r"which means|because|otherwise|however|followed by)\b)",
    re.IGNORECASE,
)
_MIN_POINT_WORDS = 2
"""A clause needs at least this many content words to stand alone as a point."""
_SPLIT_SENTENCE_WORDS = 10
"""Sentences with fewer content words than this stay whole."""


def _clauses(sentence: str) -> list[str]:
    if len(content_words(sentence)) < _SPLIT_SENTENCE_WORDS:
        return [sentence]
    return [c.strip(" ,;:") for c in _CLAUSE_SPLIT.split(sentence) if c and c.strip(" ,;:")]


def _merge_small(pieces: list[str]) -> list[str]:
    out: list[str] = []
    for piece in pieces:
        if out and (len(content_words(piece)) < _MIN_POINT_WORDS or len(content_words(out[-1])) < _MIN_POINT_WORDS):
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return out


def derive_points(reference_answer: str, max_points: int = 6) -> list[RubricPoint]:
    """Split ``reference_answer`` into 1..``max_points`` key points (ids ``d1..dN``)."""
    max_points = max(1, max_points)
    text = " ".join(reference_answer.split())
    if not text:
        return []
    pieces: list[str] = []
    for sentence in split_sentences(text):
        pieces.extend(_clauses(sentence))
    pieces = _merge_small([p for p in pieces if p]) or [text]
    while len(pieces) > max_points:
        sizes = [len(content_words(pieces[i])) + len(content_words(pieces[i + 1])) for i in range(len(pieces) - 1)]
        i = sizes.index(min(sizes))
        pieces[i : i + 2] = [f"{pieces[i]} {pieces[i + 1]}"]
    return [RubricPoint(id=f"d{i + 1}", text=piece, weight=1.0, essential=(i == 0)) for i, piece in enumerate(pieces)]
