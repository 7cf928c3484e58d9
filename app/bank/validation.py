"""Checks that need more than the schema: grading knowledge every question must carry, and
near-duplicate questions by embedding similarity."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from app.bank.loader import Bank, Problem
from app.tokens import repeats_run, word_runs

NEAR_DUPLICATE_THRESHOLD = 0.92
MIN_MISCONCEPTIONS = 2
"""Each question names at least this many misconceptions (the schema allows at most 4)."""


def grading_knowledge(bank: Bank) -> list[Problem]:
    """Every question has 2-4 misconceptions, and none repeats one of its own variants.

    The grader marks a point ``wrong`` when an answer is closer to one of its misconceptions
    than to the point: a question without them can only ever be ``covered`` or ``missing``.
    """
    problems = []
    for qid in sorted(bank.questions):
        q = bank.questions[qid]
        where = bank.files[qid]
        if len(q.misconceptions) < MIN_MISCONCEPTIONS:
            problems.append(
                Problem(
                    where,
                    f"{qid}.misconceptions",
                    f"has {len(q.misconceptions)}; every question needs {MIN_MISCONCEPTIONS}-4 "
                    "(see question_bank/README.md, 'Misconceptions')",
                )
            )
        variants = {" ".join(v.lower().split()): r.id for r in q.rubric for v in r.variants}
        for m in q.misconceptions:
            hit = variants.get(" ".join(m.statement.lower().split()))
            if hit is not None:
                problems.append(
                    Problem(
                        where, f"{qid}.misconceptions.{m.id}", f"is also a variant of {hit}: a claim cannot be both"
                    )
                )
    return problems


HINT_COPY_RUN = 5
"""A hint that repeats this many words in a row of the reference answer or a rubric point gives
the answer away instead of leading to it."""


def hints_that_give_it_away(bank: Bank) -> list[Problem]:
    """Hints lead from a nudge to a near-answer, in their own words: none may copy a run of
    :data:`HINT_COPY_RUN` words of the question's reference answer, rubric points or variants."""
    problems = []
    for qid in sorted(bank.questions):
        q = bank.questions[qid]
        sources = [q.reference_answer, *(t for r in q.rubric for t in (r.point, *r.variants))]
        runs = word_runs(sources, HINT_COPY_RUN)
        for n, hint in enumerate(q.hints):
            if repeats_run(hint, runs, HINT_COPY_RUN):
                problems.append(
                    Problem(
                        bank.files[qid],
                        f"{qid}.hints[{n}]",
                        f"copies {HINT_COPY_RUN} words in a row of the reference answer or a rubric point; "
                        "a hint leads to the answer in its own words",
                    )
                )
    return problems


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
