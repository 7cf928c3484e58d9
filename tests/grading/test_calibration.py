"""The calibration: its JSON model against scikit-learn, its persistence, its guarantees (range,
clipping, monotone coverage), and the shipped artifacts against the features the grader computes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.grading.calibration import ARTIFACT_DIR, BLEND, GBM_PARAMS, RIDGE_ALPHA, RUBRIC_PATH, Calibration
from app.grading.embedding_grader import EmbeddingGrader
from app.grading.features import FEATURE_NAMES
from app.grading.schemas import GradeInput, RubricPoint, Verdict
from app.grading.verdicts import PAIR_FEATURES

SHIPPED = sorted(ARTIFACT_DIR.glob("calibration-*.json"))
NAMES = ["cos_ref", "tok_recall", "log_len_answer"]


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Features in [0, 1] and a score rising with the first two (noisy, clipped to 0-5)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, size=(n, len(NAMES)))
    y = np.clip(3.5 * X[:, 0] + 1.5 * X[:, 1] + rng.normal(0, 0.3, n), 0, 5)
    return X, y


def rows_of(X: np.ndarray) -> list[dict[str, float]]:
    return [dict(zip(NAMES, map(float, x), strict=True)) for x in X]


@pytest.fixture(scope="module")
def fitted() -> Calibration:
    X, y = synthetic(400, seed=1)
    return Calibration.fit(rows_of(X), y, NAMES, version="test")


@pytest.fixture(scope="module")
def cal() -> Calibration:
    return Calibration.load()


# ------------------------------------------------------------------ the model's arithmetic
def test_the_json_model_reproduces_scikit_learn(fitted: Calibration) -> None:
    """predict_raw (standardise, ridge, isotonic, boosted trees, blend) gives what the same
    scikit-learn models give, on answers it was not fitted on."""
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import Ridge

    X, y = synthetic(400, seed=1)
    mean, scale = X.mean(axis=0), X.std(axis=0)
    ridge = Ridge(alpha=RIDGE_ALPHA).fit((X - mean) / scale, y)
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=5.0).fit(ridge.predict((X - mean) / scale), y)
    gbm = GradientBoostingRegressor(**GBM_PARAMS).fit(X, y)

    new, _ = synthetic(100, seed=2)
    new = np.clip(new, X.min(axis=0), X.max(axis=0))  # inside the training range: no clipping
    expected = BLEND * iso.predict(ridge.predict((new - mean) / scale)) + (1 - BLEND) * gbm.predict(new)
    got = [fitted.predict_raw(r) for r in rows_of(new)]
    np.testing.assert_allclose(got, np.clip(expected, 0, 5), atol=1e-6)
    assert [fitted.predict(r) for r in rows_of(new)] == [round(v, 1) for v in got]


def test_fitting_learns_the_direction_of_the_data(fitted: Calibration) -> None:
    low = {"cos_ref": 0.1, "tok_recall": 0.1, "log_len_answer": 0.5}
    high = {"cos_ref": 0.9, "tok_recall": 0.9, "log_len_answer": 0.5}
    assert fitted.predict(high) > fitted.predict(low) + 2.5
    assert fitted.coef[0] > 0 and fitted.coef[1] > 0
    # The ridge + isotonic part alone is monotone in a feature with a positive weight.
    linear = Calibration.from_dict(fitted.to_dict() | {"parameters": fitted.to_dict()["parameters"] | {"blend": 1.0}})
    scores = [linear.predict_raw(low | {"cos_ref": float(v)}) for v in np.linspace(0, 1, 41)]
    assert scores == sorted(scores) and scores[-1] > scores[0]


def test_inputs_are_clipped_to_the_training_range(fitted: Calibration) -> None:
    base = {"cos_ref": 0.5, "tok_recall": 0.5, "log_len_answer": 0.5}
    top = base | {"log_len_answer": fitted.upper[2]}
    assert fitted.predict_raw(base | {"log_len_answer": 50.0}) == fitted.predict_raw(top)
    bottom = base | {"cos_ref": fitted.lower[0]}
    assert fitted.predict_raw(base | {"cos_ref": -9.0}) == fitted.predict_raw(bottom)
    # Missing or non-finite features count as 0 (then clipped), never as NaN.
    zero = base | {"tok_recall": 0.0}
    assert fitted.predict_raw(base | {"tok_recall": float("nan")}) == fitted.predict_raw(zero)
    assert fitted.predict_raw({"cos_ref": 0.5, "log_len_answer": 0.5}) == fitted.predict_raw(zero)


def test_the_coverage_curve_is_fitted_from_point_similarities() -> None:
    X, y = synthetic(200, seed=3)
    rng = np.random.default_rng(3)
    sims = np.clip(0.2 + 0.12 * y + rng.normal(0, 0.05, len(y)), -1, 1)  # good answers cover their points
    with_points = Calibration.fit(rows_of(X), y, NAMES, point_similarities=sims, point_scores=y)
    assert (with_points.coverage_slope, with_points.coverage_intercept) != (5.7, -2.8)
    assert with_points.coverage_slope > 0
    cov = [with_points.coverage(float(s)) for s in np.linspace(-0.2, 1.0, 25)]
    assert cov == sorted(cov) and cov[0] < 0.5 < cov[-1]


def test_a_saved_calibration_predicts_the_same(tmp_path: Path, fitted: Calibration) -> None:
    again = Calibration.load(fitted.save(tmp_path / "c.json"))
    new, _ = synthetic(50, seed=4)
    assert [again.predict_raw(r) for r in rows_of(new)] == [fitted.predict_raw(r) for r in rows_of(new)]
    assert again == fitted
    with pytest.raises(FileNotFoundError, match="calibration artifact not found"):
        Calibration.load(tmp_path / "missing.json")


# ------------------------------------------------------------------ the shipped artifacts
@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_artifact_reads_and_writes_back_unchanged(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    loaded = Calibration.from_dict(data)
    assert loaded.to_dict() == data  # nothing the file holds is lost by a load and save
    assert len(loaded.lower) == len(loaded.upper) == len(loaded.mean) == len(loaded.feature_names)
    assert loaded.covered_threshold > loaded.partial_threshold


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


def test_the_grader_feeds_each_shipped_calibration_every_feature_it_was_fitted_on(
    embedding_grader: EmbeddingGrader,
) -> None:
    """A feature renamed or dropped in the grader would silently count as 0 in the calibration;
    the pair head must be the one the calibration was fitted on; the score is the calibration's."""
    reference = (
        "Data drift is a change in the distribution of the model's inputs in production compared "
        "with the training data; detect it by comparing live feature distributions with a baseline."
    )
    answer = "Drift means production inputs stop looking like the training data; compare them to a baseline."
    plain = GradeInput(question="What is data drift?", reference_answer=reference, answer=answer)
    rubric = plain.model_copy(
        update={"rubric": [RubricPoint(id="a", text="Inputs shift from the training data", essential=True)]}
    )
    assert embedding_grader.rubric_calibration.version == Calibration.load(RUBRIC_PATH).version
    for item, cal in ((plain, embedding_grader.calibration), (rubric, embedding_grader.rubric_calibration)):
        ev = embedding_grader.grade(item)
        assert ev.calibration_version == cal.version
        assert set(cal.feature_names) <= set(ev.features), set(cal.feature_names) - set(ev.features)
        assert cal.pair_version == embedding_grader.pair.version
        assert not ev.caps and ev.score == pytest.approx(cal.predict(ev.features), abs=0.1)
