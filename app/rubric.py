"""The score scale and the rubric types that the bank and the grader both speak.

Shared below the domains: the bank's schema declares :class:`RubricPoint` items, the grader
checks answers against them, reports and evals read the pass mark. Nothing here imports a
domain package.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

PASS_MARK = 3.0
"""Scores are on 0-5 with one decimal; 3.0 and above passes."""


def round_score(value: float) -> float:
    """Clamp to 0-5 and round to one decimal, the scale every score is shown on."""
    return round(min(5.0, max(0.0, float(value))), 1)


def passed(score: float | None) -> bool | None:
    """Whether ``score`` reaches the pass mark (None while there is no score)."""
    return None if score is None else score >= PASS_MARK


class RubricPoint(BaseModel):
    """One checkable key point of a good answer."""

    id: str
    text: str
    weight: float = Field(default=1.0, gt=0)
    essential: bool = False
    variants: list[str] = Field(default_factory=list)
    """Plain-language restatements that earn the same credit as ``text``."""
    misconceptions: list[str] = Field(default_factory=list)
    """Wrong claims that contradict this point; evidence closer to one of them marks it wrong."""
