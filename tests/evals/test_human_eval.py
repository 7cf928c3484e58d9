"""`eval semeval` / `eval mohler`: data checks, question-grouped folds, target checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from app.cli import app as cli_app
from evals.fit_pair_model import group_folds
from evals.human_eval import check
from evals.runner import check_targets
from evals.schemas import EvalSummary


@pytest.mark.parametrize("target", ["semeval", "mohler"])
def test_missing_data_exits_2_and_says_where(tmp_path: Path, target: str) -> None:
    result = CliRunner().invoke(cli_app, ["eval", target, "--data", str(tmp_path)])
    assert result.exit_code == 2
    assert "data not found at" in result.output and str(tmp_path) in result.output


def test_folds_never_split_a_question_and_spread_every_source() -> None:
    groups = [f"semeval:q{i % 40}" for i in range(400)] + [f"mohler:q{i % 10}" for i in range(100)]
    fold = group_folds(groups, folds=5, seed=0)
    for g in set(groups):
        assert len({int(f) for f, h in zip(fold, groups, strict=True) if h == g}) == 1
    for source in ("semeval", "mohler"):
        sel = np.array([g.startswith(source) for g in groups])
        assert set(fold[sel].tolist()) == {0, 1, 2, 3, 4}
    # One source's folds do not move when another source gains questions.
    more = group_folds([*groups, "bank:x", "bank:y"], folds=5, seed=0)
    assert (more[: len(groups)] == fold).all()


def test_targets_are_checked_both_ways() -> None:
    limits = {"min": {"auc": 0.82}, "max": {"rmse": 0.8}}
    assert check("semeval", {"auc": 0.83, "rmse": 0.7}, limits) == []
    assert check("semeval", {"auc": 0.78, "rmse": 0.9}, limits) == ["semeval auc 0.78 < 0.82", "semeval rmse 0.9 > 0.8"]


def test_gold_targets_are_reported_not_gated() -> None:
    swapped = {"n": 4, "questions": 2, "mean_human": 1.0, "mean_pred": 2.9, "mae": 1.9, "bias": 1.9, "abs_bias": 1.9}
    padding = {"n": 2, "limit": 0.3, "max_raise": 0.8, "mean_abs_diff": 0.5, "passed": False}
    figures = EvalSummary.model_validate(
        {
            "grader": "embedding",
            "kind": "embedding",
            "config": {"name": "embedding"},
            "n_items": 4,
            "n_scored": 4,
            "unscored": 0,
            "overall": {"n": 4},
            "by_split": {},
            "by_category": {"swapped-facts": swapped | {"pass_rate": 0.25}},
            "band_confusion": {},
            "invariance": {"padding": padding | {"violations": [{"id": "p1", "diff": 0.8}]}},
            "judge": {},
            "latency_ms": {"p50": 1.0, "p95": 2.0, "mean": 1.5},
        }
    )
    spec = {
        "embedding": {
            "targets": {"categories": {"swapped-facts": {"max": {"mean_pred": 1.5}}}, "invariance": ["padding"]}
        }
    }
    misses = check_targets(figures, spec)
    assert any("swapped-facts mean_pred 2.9" in m for m in misses) and any("padding" in m for m in misses)
