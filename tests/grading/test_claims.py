"""Lists of terms against statements (app.grading.claims)."""

from __future__ import annotations

import pytest

from app.grading.claims import is_statement, structure

LISTS = [
    "Canary, blue-green, shadow, rollback, SLOs, p99 latency",
    "I'd mention:\n* overfitting / high variance\n* leakage, duplicates\n* learning curves\n* early stopping",
    "Key points: precision -> TP/(TP+FP); recall -> TP/(TP+FN); F1; threshold; PR curve",
    "MLflow, S3, CloudTrail, logging",
    "feature store | online store | offline store | point-in-time joins | skew",
]
STATEMENTS = [
    "Sample a small percent of requests and compute SHAP offline.",
    "Send a small slice of users to the new model first and widen it only if it behaves.",
    "Precision is the share of flagged items that are real; recall is the share of real ones we catch.",
    "It overfits, so I would add regularisation and stop training earlier.",
    "Canary: a small share of traffic goes to the new model first; blue-green flips all traffic at once.",
]


@pytest.mark.parametrize("answer", LISTS)
def test_lists_of_terms_are_keyword_lists(answer: str) -> None:
    shape = structure(answer)
    assert shape.keyword_list, (answer, shape)


@pytest.mark.parametrize("answer", STATEMENTS)
def test_statements_even_terse_ones_are_not(answer: str) -> None:
    shape = structure(answer)
    assert not shape.keyword_list, (answer, shape)
    assert shape.n_statements >= 1


def test_a_piece_needs_words_that_relate_its_terms() -> None:
    assert not is_statement("model registry")
    assert not is_statement("drift detection PSI KS alerting")
    assert is_statement("the registry keeps every model version")
