"""Spot non-answers ("I don't know", empty, punctuation, the question copied back) cheaply.

A non-answer scores 0 without any model call. The rule is deliberately conservative: short
answers can be right ("main", "O(log n)", "a stack"), so an answer only counts as near-empty
when it adds *no* content word of its own beyond the words of the question, or when what it
says is only a way of not answering.

This module also holds the small word helpers (tokens, stopwords, a light stemmer) that the
embedding features and the rubric deriver share.
"""

from __future__ import annotations

import re
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

_WORD_RE = re.compile(r"[a-z0-9]+(?:[+#]+|(?:['\-][a-z0-9]+)*)")

_NON_ANSWER_PHRASES = [
    r"i\s*(?:do\s*n['o]?t|dont|don't|do not|have no|haven'?t (?:got )?(?:a|any))\s*"
    r"(?:know|remember|recall|understand|idea|clue|sure)(?:\s+\w+){0,4}",
    r"(?:i\s*(?:have|'ve got|got)\s*)?no\s*(?:idea|clue|answer|comment)(?:\s+\w+){0,3}",
    r"(?:i\s*(?:am|'m)\s*)?not\s*sure(?:\s+\w+){0,3}",
    r"(?:i\s*)?(?:dunno|idk|no idea|nope|pass|skip|next(?: question)?|n/?a|"
    r"unknown|unsure|not applicable|no answer|blank|\?+)",
    r"(?:i\s*(?:can(?:no|')?t|cannot|could\s*n['o]?t)\s*"
    r"(?:answer|say|remember|recall)(?:\s+\w+){0,4})",
    r"(?:i\s*(?:will|'ll|would like to|want to)\s*)?(?:pass|skip)(?:\s+\w+){0,3}",
    r"(?:sorry|pass)(?:\s+\w+){0,3}",
]
_FILLER = r"(?:\s*(?:sorry|um+|uh+|hmm+|well|honestly|to be honest|unfortunately|ok(?:ay)?|"
_FILLER += r"so|but|and|i\s*guess|really|at all|here|this one|on this|about this)\s*[,.!]*\s*)*"
_NON_ANSWER_RE = re.compile(
    rf"^{_FILLER}(?:(?:{'|'.join(_NON_ANSWER_PHRASES)}){_FILLER}[.!?,;:]*\s*)+$",
    re.IGNORECASE,
)


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
    for suffix in ("ational", "ization", "ations", "ation", "ments", "ment", "ness", "ings",
                   "ing", "ies", "ied", "ers", "er", "ed", "es", "ly", "s"):
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


def is_non_answer(answer: str, question: str = "") -> bool:
    """True for answers that say nothing: empty, punctuation, "I don't know", "pass", "idk",
    "not sure", or text that only repeats words of the question."""
    text = (answer or "").strip()
    if not text or not re.search(r"[A-Za-z0-9]", text):
        return True
    if _NON_ANSWER_RE.match(text):
        return True
    return not new_content_words(text, question)
