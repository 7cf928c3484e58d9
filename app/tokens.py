"""The word helpers every part shares: tokens, stopwords and a light stemmer.

Shared below the domains: the grader (features, claim and off-topic checks, the pair model's stem
ids, the rubric deriver, non-answer triage) and the bank's hint check agree on what a "word" is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

_STOPWORD_TEXT = """
    a about also am an and are as at be because been being but by can could did do does doing
    done for from get gets got had has have having he her here hers herself him himself his how
    i if in into is it its itself just let like may me might must my myself of on or our ours
    ourselves shall she should so some something such than that the their theirs them
    themselves then there these they this those though thus to too us use used uses using very
    via was we well were what whatever when where whereas whether which while who whom whose
    why will with would yes yet you your yours yourself yourselves s t d ll m re ve
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
"""Function words that carry no answer content. Quantities, negations and order words
("all", "none", "not", "once", "before") are deliberately *not* here: they can be answers."""

_SUFFIXES = (
    "ational",
    "ization",
    "ations",
    "ation",
    "ments",
    "ment",
    "ness",
    "ings",
    "ing",
    "ies",
    "ied",
    "ers",
    "er",
    "ed",
    "es",
    "ly",
    "s",
)
"""What :func:`stem` strips, longest first."""
_WORD_RE = re.compile(r"[a-z0-9]+(?:[+#]+|(?:['\-][a-z0-9]+)*)")


def words(text: str) -> list[str]:
    """Lower-cased word tokens (keeps ``c++``, ``c#``, ``don't``, ``k-means`` together)."""
    return _WORD_RE.findall(text.lower().replace("\u2019", "'"))


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light suffix-stripping stemmer: enough to match ``caching``/``cached``/``caches``
    (memoised: every grading stems the same bank words again)."""
    w = word.split("'", 1)[0]
    if len(w) <= 3 or not w.isalpha():
        return w
    for suffix in _SUFFIXES:
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            base = w[: -len(suffix)]
            if suffix in ("ies", "ied"):
                base += "y"
            if len(base) > 3 and base[-1] == base[-2] and base[-1] not in "lsz":
                base = base[:-1]
            return base
    return w


def content_words(text: str) -> list[str]:
    """Stemmed content words of ``text`` (stopwords removed)."""
    out = []
    for w in words(text):
        if w in STOPWORDS:
            continue
        out.append(stem(w))
    return out


def new_content_words(answer: str, question: str = "") -> list[str]:
    """Content words of ``answer`` that are not already words of ``question``."""
    asked = set(content_words(question))
    return [w for w in content_words(answer) if w not in asked]


def word_runs(texts: Iterable[str], n: int) -> set[tuple[str, ...]]:
    """Every run of ``n`` consecutive words in ``texts`` (what :func:`repeats_run` looks for)."""
    return {tuple(w[i : i + n]) for text in texts for w in [words(text)] for i in range(len(w) - n + 1)}


def repeats_run(text: str, runs: set[tuple[str, ...]], n: int) -> bool:
    """Whether ``text`` repeats one of ``runs`` (runs of ``n`` words, from :func:`word_runs`)."""
    w = words(text)
    return any(tuple(w[i : i + n]) in runs for i in range(len(w) - n + 1))
