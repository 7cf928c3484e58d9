"""The committed calibration artifact, the JSON model, and the Mohler evaluation's skip path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.grading.calibration import DEFAULT_PATH, RUBRIC_PATH, Calibration
from app.grading.features import FEATURE_NAMES, SCORING_FEATURES
from app.grading.schemas import Verdict
from app.grading.verdicts import PAIR_FEATURES


@pytest.fixture(scope="module")
def cal() -> Calibration:
    return Calibration.load()


def test_shipped_artifacts_say_what_they_were_fitted_on(cal: Calibration) -> None:
    rubric = Calibration.load(RUBRIC_PATH)
    assert (cal.version, rubric.version) == ("calibration-v3", "calibration-v3-rubric")
    assert cal.meta["applies_to"] == "reference" and rubric.meta["applies_to"] == "rubric"
    # The reference path was fitted on real human labels; the rubric path on the gold train split.
    assert cal.meta["fitted_on"]["semeval"] > 8000 and cal.meta["fitted_on"]["mohler"] > 2000
    assert set(rubric.meta["fitted_on"]) == {"gold"} or rubric.meta["fitted_on"].get("semeval", 0) == 0
    assert 0 < rubric.meta["fitted_on"]["gold"] < 538  # the held-out test split never enters a fit
    cv = cal.meta["cross_validation"]
    assert "question-grouped" in cv["protocol"]
    assert {"semeval", "mohler", "gold_test"} <= set(cv)
    assert cv["semeval"]["auc"] > cv["semeval"]["cosine_auc"]
    assert cal.pair_version == rubric.pair_version == "pair-v1"


def test_mohler_artifact_is_versioned_and_documented() -> None:
    path = DEFAULT_PATH.parent / "calibration-v1.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    cal = Calibration.load(path)
    assert data["version"] == cal.version == "calibration-v1"
    assert cal.feature_names == list(SCORING_FEATURES)
    assert len(cal.lower) == len(cal.upper) == len(SCORING_FEATURES)
    assert "Mohler" in data["training_data"]["dataset"]
    cv = data["cross_validation"]
    assert "question-grouped" in cv["protocol"]
    assert cv["pearson"]["mean"] >= 0.60
    assert cv["rmse"]["mean"] <= 0.90
    assert cv["baseline_cosine_isotonic"]["pearson"]["mean"] < cv["pearson"]["mean"]
    assert data["parameters"]["verdict_thresholds"]["covered"] > (
        data["parameters"]["verdict_thresholds"]["partial"]
    )


def test_predictions_stay_in_range(cal: Calibration) -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        feats = {n: float(v) for n, v in zip(FEATURE_NAMES, rng.normal(0, 3, len(FEATURE_NAMES)), strict=True)}
        score = cal.predict(feats)
        assert 0.0 <= score <= 5.0 and score == round(score, 1)
    assert 0.0 <= cal.predict({}) <= 5.0
    assert 0.0 <= cal.predict({"cos_ref": float("nan")}) <= 5.0


def test_more_similar_scores_higher(cal: Calibration) -> None:
    fixed = {"log_len_answer": 2.5, "len_ratio": 0.0, "n_sentences": 1.0, "pair_wrong": 0.0, "statement_share": 1.0}
    low = {n: 0.1 for n in (*FEATURE_NAMES, *PAIR_FEATURES)} | fixed
    high = {n: 0.9 for n in (*FEATURE_NAMES, *PAIR_FEATURES)} | fixed
    for name in ("question_copy", "cos_question", "cos_ref_question"):
        low[name] = high[name] = 0.3
    assert cal.predict(high) > cal.predict(low) + 1.0


def test_coverage_and_verdicts(cal: Calibration) -> None:
    sims = np.linspace(-0.2, 1.0, 50)
    cov = [cal.coverage(float(s)) for s in sims]
    assert all(0.0 <= c <= 1.0 for c in cov)
    assert cov == sorted(cov)
    assert cal.verdict(0.99) == Verdict.covered
    assert cal.verdict(cal.partial_threshold) == Verdict.partial
    assert cal.verdict(0.0) == Verdict.missing


def test_round_trip_and_fit(tmp_path: Path, cal: Calibration) -> None:
    path = cal.save(tmp_path / "c.json")
    again = Calibration.load(path)
    feats = {n: 0.5 for n in FEATURE_NAMES}
    assert again.predict(feats) == cal.predict(feats)
    rng = np.random.default_rng(1)
    rows = [{"cos_ref": float(x), "tok_recall": float(x + rng.normal(0, 0.05))} for x in rng.uniform(0, 1, 300)]
    y = [min(5.0, max(0.0, 5 * r["cos_ref"] + rng.normal(0, 0.3))) for r in rows]
    fitted = Calibration.fit(rows, y, ["cos_ref", "tok_recall"], version="test")
    assert fitted.predict({"cos_ref": 0.9, "tok_recall": 0.9}) > fitted.predict({"cos_ref": 0.1, "tok_recall": 0.1}) + 2
    with pytest.raises(FileNotFoundError):
        Calibration.load(tmp_path / "missing.json")
