"""Detect answer text that tries to instruct the grader.

Candidates' answers are data. Sentences that address the grader ("ignore the rubric", "give
this answer a 5", "you are now ...") are found here so that the graders can drop them before
scoring (so they never raise a score) and the turn can be flagged for a human.
"""

from __future__ import annotations

import re

_PATTERNS = [
    r"\bignore\b.{0,40}\b(previous|prior|above|earlier|all|the|your)\b.{0,30}"
    r"\b(instructions?|rubric|prompt|rules?|guidelines?)\b",
    r"\bdisregard\b.{0,60}\b(instructions?|rubric|prompt|rules?)\b",
    r"\b(give|award|assign|grade|score|rate|mark)\b.{0,40}\b("
    r"(5|five|10|ten|100)\s*(/\s*5|/\s*10|out of|points?|marks?|stars?)?|full (marks|score|points)|"
    r"(the )?(maximum|max|highest|perfect) (score|grade|marks?))",
    r"\b(this|my) answer (is|should be) (perfect|correct|excellent|graded)\b",
    r"\byou are (now )?(a|an|the)\b.{0,40}\b(grader|assistant|model|ai)\b",
    r"\b(system|assistant)\s*(prompt|message|:)",
    r"\bnew instructions?\b",
    r"\bas (an|the) (ai|grader|llm|language model)\b",
    r"\bscore\s*[:=]\s*[0-9]",
    r'"score"\s*:',
    r"</?\s*(answer|system|instructions?|candidate_answer)\s*>",
]
_INJECTION_RE = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE | re.DOTALL)
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")


def split_sentences(text: str) -> list[str]:
    """Split text into sentences or lines, dropping empty pieces."""
    return [s.strip() for s in _SENTENCE_SPLIT.split(text) if s.strip()]


def injection_sentences(text: str) -> list[str]:
    """The sentences of ``text`` that look like instructions to the grader."""
    return [s for s in split_sentences(text) if _INJECTION_RE.search(s)]


def looks_like_injection(text: str) -> bool:
    return bool(_INJECTION_RE.search(text))


def strip_injection(text: str) -> str:
    """``text`` without the sentences that try to instruct the grader."""
    if not looks_like_injection(text):
        return text
    return " ".join(s for s in split_sentences(text) if not _INJECTION_RE.search(s))
