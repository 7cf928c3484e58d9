"""Checks that need more than the schema: near-duplicate questions by embedding similarity."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from app.bank.loader import Bank, Problem

NEAR_DUPLICATE_THRESHOLD = 0.92


def near_duplicates(
    bank: Bank,
    encode: Callable[[list[str]], np.ndarray],
    threshold: float = NEAR_DUPLICATE_THRESHOLD,
) -> list[Problem]:
    """Pairs of questions whose texts are more similar than ``threshold`` (cosine)."""
    ids: Sequence[str] = sorted(bank.questions)
    if len(ids) < 2:
        return []
    vectors = encode([bank.questions[i].question for i in ids])
    sims = vectors @ vectors.T
    problems = []
    for a in range(len(ids)):
        for b in range(a + 1, len(ids)):
            if sims[a, b] >= threshold:
                problems.append(
                    Problem(
                        bank.files[ids[a]],
                        f"{ids[a]}.question",
                        f"near-duplicate of {ids[b]} ({bank.files[ids[b]]}), "
                        f"similarity {sims[a, b]:.2f} >= {threshold}",
                    )
                )
    return problems
