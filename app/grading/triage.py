"""Spot non-answers ("I don't know", empty, punctuation, the question copied back) cheaply.

A non-answer scores 0 without any model call. The rule is deliberately conservative: short
answers can be right ("main", "O(log n)", "a stack"), so an answer only counts as near-empty
when it adds *no* content word of its own beyond the words of the question, or when what it
says is only a way of not answering.

Its word helpers come from :mod:`app.tokens`.
"""

from __future__ import annotations

import re

from app.tokens import new_content_words

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


def is_non_answer(answer: str, question: str = "") -> bool:
    """True for answers that say nothing: empty, punctuation, "I don't know", "pass", "idk",
    "not sure", or text that only repeats words of the question."""
    text = (answer or "").strip()
    if not text or not re.search(r"[A-Za-z0-9]", text):
        return True
    if _NON_ANSWER_RE.match(text):
        return True
    return not new_content_words(text, question)
