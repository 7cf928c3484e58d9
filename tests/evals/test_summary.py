"""The eval summary model, the threshold gate on it, and the `eval` sub-app's plumbing (no model load)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from app.cli import app as cli_app
from evals.runner import check_targets, check_thresholds, load_thresholds
from evals.schemas import EvalSummary, GraderConfig, ScopeFigures


def summary(**overrides: Any) -> EvalSummary:
    """A summary that meets every threshold of evals/thresholds.yaml's embedding gate."""
    scope = {"pearson": 0.95, "spearman": 0.95, "qwk": 0.9, "mae": 0.3, "rmse": 0.4, "band_accuracy": 0.95}
    category = {"n": 10, "questions": 5, "mean_human": 1.0, "mean_pred": 1.0, "mae": 0.2, "bias": 0.0}
    data: dict[str, Any] = {
        "grader": "embedding",
        "kind": "embedding",
        "config": {"name": "embedding"},
        "n_items": 30,
        "n_scored": 30,
        "unscored": 0,
        "overall": {"n": 30, **scope},
        "by_split": {"train": {"n": 20, **scope}, "test": {"n": 10, **scope}},
        "by_category": {
            name: category | {"abs_bias": 0.0, "pass_rate": 0.0}
            for name in ("keyword-list", "plain-words", "swapped-facts", "terse-correct")
        },
        "band_confusion": {"pass": {"pass": 15, "fail": 0}, "fail": {"pass": 0, "fail": 15}},
        "invariance": {
            kind: {"n": 3, "limit": limit, "max_raise": 0.0, "mean_abs_diff": 0.0, "violations": [], "passed": True}
            for kind, limit in (("paraphrase", 0.5), ("padding", 0.3), ("injection", 0.0))
        },
        "judge": {},
        "latency_ms": {"p50": 10.0, "p95": 20.0, "mean": 12.0},
    }
    for key, value in overrides.items():
        data[key] = value(data[key]) if callable(value) else value
    return EvalSummary.model_validate(data)


FAILING = {"n": 2, "limit": 0.0, "max_raise": 0.4, "mean_abs_diff": 0.4, "violations": [{"id": "x", "diff": 0.4}]}
FAILING["passed"] = False


@pytest.fixture(scope="module")
def thresholds() -> dict[str, Any]:
    return load_thresholds()


def test_a_good_summary_meets_the_shipped_gate_and_targets(thresholds: dict[str, Any]) -> None:
    assert check_thresholds(summary(), thresholds) == []
    assert check_targets(summary(), thresholds) == []


def test_each_gated_figure_can_fail(thresholds: dict[str, Any]) -> None:
    low = summary(overall=lambda o: o | {"pearson": 0.5}, by_split=lambda s: s | {"test": {"n": 1}})
    failures = check_thresholds(low, thresholds)
    assert "overall pearson 0.5 is below the minimum 0.87" in failures
    # A split with too few answers has no figures: every figure gated on it fails, printed as None.
    assert "test pearson None is below the minimum 0.84" in failures
    assert "test mae None is above the maximum 0.66" in failures

    cats = summary(by_category=lambda c: {k: v for k, v in c.items() if k != "plain-words"})
    assert check_thresholds(cats, thresholds) == ["category plain-words: no answers in the gold set"]
    worse = summary(by_category=lambda c: c | {"keyword-list": c["keyword-list"] | {"pass_rate": 0.1}})
    assert check_thresholds(worse, thresholds) == ["category keyword-list pass_rate 0.1 is above the maximum 0.05"]


def test_only_the_listed_invariances_gate_and_targets_do_not(thresholds: dict[str, Any]) -> None:
    padding = summary(invariance=lambda i: i | {"padding": FAILING})
    assert check_thresholds(padding, thresholds) == []  # padding is a target of the embedding grader
    assert check_targets(padding, thresholds) == ["invariance padding: 1 pair(s) beyond 0.0"]
    injection = summary(invariance=lambda i: i | {"injection": FAILING})
    assert check_thresholds(injection, thresholds) == ["invariance injection: 1 pair(s) beyond 0.0"]
    everything = {"embedding": {"scopes": {}}}  # no invariance key: all of them gate
    assert len(check_thresholds(summary(invariance=lambda i: i | {"padding": FAILING}), everything)) == 1
    assert check_thresholds(padding, {"embedding": {"scopes": {}, "invariance": False}}) == []


def test_judge_cache_misses_and_fallbacks_fail_the_gate() -> None:
    spec = {"hybrid": {"scopes": {}, "max_fallback_rate": 0.1}}
    judge = {"items_judged": 30, "fallback_rate": 0.2, "cache_misses": 3}
    judged = summary(kind="hybrid", grader="hybrid", judge=judge)
    failures = check_thresholds(judged, spec)
    assert failures[0].startswith("3 judge call(s) missed the replay cache")
    assert failures[1] == "judge fallback rate 0.2 is above 0.1"
    unknown = summary(grader="mine", kind="judge")
    assert check_thresholds(unknown, {}) == ["no thresholds for grader 'mine' in thresholds.yaml"]


def test_a_scope_without_figures_dumps_n_alone() -> None:
    assert ScopeFigures(n=1).model_dump() == {"n": 1}
    dumped = summary().model_dump()
    assert list(dumped) == [
        "grader", "kind", "config", "n_items", "n_scored", "unscored", "overall", "by_split", "by_category",
        "band_confusion", "invariance", "judge", "latency_ms", "versions",
    ]  # fmt: skip
    assert dumped["config"] == {
        "name": "embedding", "grader": "embedding", "judge_model": None, "prompt_version": None,
        "cache": "readwrite", "base_url": None,
    }  # fmt: skip
    assert EvalSummary.model_validate(json.loads(json.dumps(dumped))) == summary()


def test_grader_configurations(tmp_path: Path) -> None:
    assert GraderConfig.load("hybrid", replay=True) == GraderConfig("hybrid", "hybrid", cache="replay")
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\ngrader: judge\njudge_model: m\n")
    assert GraderConfig.load(str(path)) == GraderConfig("mine", "judge", judge_model="m")
    path.write_text("name: mine\ngrader: judge\njudge_modle: m\n")
    with pytest.raises(ValueError, match="judge_modle"):
        GraderConfig.load(str(path))
    with pytest.raises(ValueError, match=r"unknown grader configuration 'missing\.yaml'"):
        GraderConfig.load("missing.yaml")


# ------------------------------------------------------------------------------ CLI
def test_eval_alone_runs_eval_gold_with_its_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    import evals.cli

    seen: dict[str, Any] = {}

    def run_gold(settings: object, **kwargs: Any) -> int:
        seen.update(kwargs)
        return 1

    monkeypatch.setattr(evals.cli, "run_gold", run_gold)
    result = CliRunner().invoke(cli_app, ["eval"])
    assert result.exit_code == 1, result.output
    assert seen["grader"] == "embedding" and seen["split"] == "all" and seen["gate"] and not seen["replay"]


def test_eval_errors_exit_2_with_one_line() -> None:
    runner = CliRunner()
    missing = runner.invoke(cli_app, ["eval", "gold", "--dataset", "/nonexistent/gold.jsonl"])
    assert missing.exit_code == 2 and "/nonexistent/gold.jsonl" in missing.output
    bad_split = runner.invoke(cli_app, ["eval", "gold", "--split", "dev"])
    assert bad_split.exit_code == 2 and "--split must be all, train or test" in bad_split.output
    unknown = runner.invoke(cli_app, ["eval", "nonsense"])
    assert unknown.exit_code == 2 and "nonsense" in unknown.output
