"""Does an answer make claims, or only list terms?

"Canary, blue-green, shadow, rollback, SLOs, p99 latency" names the right things and states
nothing: no term is related to another, so nothing in it can be right or wrong. An embedding
of it still sits close to the reference answer, which is why a list of rubric terms used to
outscore an honest partial answer. :func:`structure` splits an answer into its pieces
(sentences, then the items of lists: commas, semicolons, bullets, arrows, slashes) and counts
the words that stand in pieces that read as statements: a piece of at least
:data:`MIN_CLAIM_WORDS` words that has a verb or enough function words to relate its terms
("a small share of traffic goes to the new model first"). Terse answers are statements too
("Sample a small percent of requests and compute SHAP offline").

An answer whose statement words are under :data:`KEYWORD_LIST_SHARE` of its words is a term
list; the grader caps its score (:data:`KEYWORD_LIST_CAP`) and says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.tokens import STOPWORDS, stem, words

MIN_CLAIM_WORDS = 4
"""A piece shorter than this (in words) is a term, not a statement."""
FUNCTION_SHARE = 0.25
"""A piece with at least this share of function words relates its terms (no verb needed)."""
KEYWORD_LIST_SHARE = 0.4
"""Below this share of words in statements, an answer is a list of terms."""
KEYWORD_LIST_CAP = 1.0
"""The highest score a list of terms can get: it names topics but states nothing."""
MSG_KEYWORD_LIST = (
    "This answer lists terms without saying how they relate, so it cannot be credited for "
    "knowing them: explain in sentences what each one does and why it applies here."
)

_PIECE_SPLIT = re.compile(
    r"\s*(?:[,;|]|\n+|\s[-\u2013\u2014]\s|->|=>|\u2192|/|\u2022|\u00b7|^\s*[-*+]\s+)\s*", re.MULTILINE
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")

_AUXILIARIES = frozenset(
    [
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "am",
        "isn't",
        "aren't",
        "wasn't",
        "weren't",
        "has",
        "have",
        "had",
        "hasn't",
        "haven't",
        "do",
        "does",
        "did",
        "don't",
        "doesn't",
        "didn't",
        "can",
        "can't",
        "cannot",
        "could",
        "couldn't",
        "will",
        "won't",
        "would",
        "wouldn't",
        "should",
        "shouldn't",
        "shall",
        "may",
        "might",
        "must",
        "need",
        "needs",
        "means",
        "mean",
        "it's",
        "that's",
        "there's",
    ]
)
_VERB_TEXT = """
    add adjust affect aggregate alert allow analyse analyze apply approve assign avoid balance
    block break build buy calculate call cap catch cause change check choose collect combine
    compare compute contain control convert correct cost count cover create cut decide decrease
    define degrade delete depend deploy describe detect differ drift drop ensure estimate
    evaluate exceed expose fail fall feed fetch filter find fit fix flag flip follow force gain
    gate generate give go grow guarantee handle help hide hold identify ignore improve include
    increase inspect keep kill know label lack launch lead learn leak let limit load lock log
    look lose lower make match measure miss monitor move need notice observe overfit pass pay
    penalise penalize pick pin predict prefer prevent produce promote protect prove pull push
    put raise rank reach read reduce register reject release remove repeat replace reproduce
    require reset resolve retrain return reuse review roll rollback route run sample save scale
    score see select send serve set shift show shrink skip slow sort spend split start stay
    stop store suffer support switch take tell test track train transform treat trigger trust
    tune underfit update use validate vary verify version wait want watch weight work write
"""
_VERB_STEMS = frozenset(stem(w) for w in _VERB_TEXT.split())


@dataclass(frozen=True)
class Structure:
    """How much of an answer is made of statements."""

    n_words: int
    statement_words: int
    n_statements: int

    @property
    def statement_share(self) -> float:
        return self.statement_words / self.n_words if self.n_words else 0.0

    @property
    def keyword_list(self) -> bool:
        """True when the answer is (mostly) a list of terms rather than statements."""
        return self.n_words >= 3 and self.statement_share < KEYWORD_LIST_SHARE


def is_statement(piece: str) -> bool:
    """Whether a piece of text (a sentence or a list item) reads as a statement."""
    ws = words(piece)
    if len(ws) < MIN_CLAIM_WORDS:
        return False
    function = sum(w in STOPWORDS or w in _AUXILIARIES for w in ws)
    if any(w in _AUXILIARIES for w in ws) or function / len(ws) >= FUNCTION_SHARE:
        return True
    return any(stem(w) in _VERB_STEMS for w in ws) and function >= 1


def structure(answer: str) -> Structure:
    """Split ``answer`` into sentences and list items and count the words in statements."""
    n_words = len(words(answer))
    statement_words = n_statements = 0
    for sentence in _SENTENCE_END.split(answer):
        if not sentence.strip():
            continue
        if is_statement(sentence) and not _is_list(sentence):
            statement_words += len(words(sentence))
            n_statements += 1
            continue
        for piece in _PIECE_SPLIT.split(sentence):
            if piece and is_statement(piece):
                statement_words += len(words(piece))
                n_statements += 1
    return Structure(n_words=n_words, statement_words=statement_words, n_statements=n_statements)


def _is_list(sentence: str) -> bool:
    """A "sentence" that is really a list: many separators, few words per item."""
    pieces = [p for p in _PIECE_SPLIT.split(sentence) if p.strip()]
    if len(pieces) < 3:
        return False
    statements = sum(is_statement(p) for p in pieces)
    return statements / len(pieces) < 0.5
