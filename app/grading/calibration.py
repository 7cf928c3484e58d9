"""The calibrated mapping from embedding features to a 0-5 score, and the verdict thresholds.

The model blends two small regressors, fitted on human scores by ``evals/fit_grader.py`` and
stored as plain JSON in a versioned artifact (the shipped one is :data:`DEFAULT_VERSION`,
``artifacts/calibration-v3.json``, with what it was fitted on and its cross-validated figures):

* ridge regression on standardised features, followed by isotonic regression of its output
  (monotone, bounded to the range of the training scores);
* gradient boosting with 100 depth-2 regression trees.

Inputs are clipped to the range each feature had in the training data, so the mapping never
extrapolates (a 3,000-word answer cannot ride a length trend). Nothing is fitted at start-up:
:meth:`Calibration.load` reads the committed artifact and :meth:`Calibration.predict` only
does arithmetic. :meth:`Calibration.fit` (which needs scikit-learn) is used by the fitting
script and the cross-validation only.

The artifact also holds the per-rubric-point mapping from a point's best similarity to a 0-1
coverage (a logistic curve fitted on the same data) and the coverage thresholds of the
covered / partial / missing verdicts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.config import resource_dir
from app.grading.pair_model import DEFAULT_VERSION as PAIR_DEFAULT
from app.grading.schemas import Verdict, round_score

ARTIFACT_DIR = resource_dir("app.grading", "artifacts")
"""The shipped calibration and pair-model artifacts (package data of ``app.grading``)."""
DEFAULT_VERSION = "calibration-v3"
"""The shipped calibration (evals/fit_grader.py): ``calibration-v3`` for answers graded against
a reference answer alone (fitted on SemEval-2013, Mohler and the gold set) and
``calibration-v3-rubric`` for answers graded against a rubric written for the question (fitted
on the gold set's train split). v1 (Mohler-fitted) and v2 (gold-fitted, no pair head) are kept
for the record."""
DEFAULT_PATH = ARTIFACT_DIR / f"{DEFAULT_VERSION}.json"
RUBRIC_PATH = ARTIFACT_DIR / f"{DEFAULT_VERSION}-rubric.json"

COVERED_THRESHOLD = 0.65
"""A rubric point whose coverage reaches this is ``covered``."""
PARTIAL_THRESHOLD = 0.40
"""A rubric point whose coverage reaches this (but not ``covered``) is ``partial``."""

# Hyper-parameters chosen by question-grouped cross-validation on Mohler (see the artifact).
RIDGE_ALPHA = 10.0
GBM_PARAMS: dict[str, Any] = {
    "n_estimators": 100,
    "max_depth": 2,
    "learning_rate": 0.05,
    "subsample": 0.8,
    "min_samples_leaf": 20,
    "random_state": 0,
}
BLEND = 0.5
"""Weight of the ridge+isotonic part; the boosted trees get the rest."""


@dataclass
class _Tree:
    feature: list[int]
    threshold: list[float]
    left: list[int]
    right: list[int]
    value: list[float]

    def predict(self, x: np.ndarray) -> float:
        node = 0
        while self.left[node] != -1:
            node = (
                self.left[node]
                # scikit-learn compares features cast to float32 with float64 thresholds
                if float(np.float32(x[self.feature[node]])) <= self.threshold[node]
                else self.right[node]
            )
        return self.value[node]


@dataclass
class Calibration:
    """Features -> 0-5 score, and point similarity -> coverage -> verdict."""

    version: str
    feature_names: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    iso_x: list[float]
    iso_y: list[float]
    gbm_init: float
    gbm_learning_rate: float
    trees: list[_Tree]
    lower: list[float] = field(default_factory=list)
    upper: list[float] = field(default_factory=list)
    """Range of each feature in the training data; inputs are clipped to it."""
    blend: float = BLEND
    coverage_slope: float = 5.7
    coverage_intercept: float = -2.8
    covered_threshold: float = COVERED_THRESHOLD
    partial_threshold: float = PARTIAL_THRESHOLD
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def pair_version(self) -> str:
        """The pair head whose outputs this calibration was fitted on (``pair_*`` features)."""
        return str(self.meta.get("pair_model", PAIR_DEFAULT))

    # -- scoring ----------------------------------------------------------------------------

    def _vector(self, features: Mapping[str, float]) -> np.ndarray:
        values = []
        for name in self.feature_names:
            v = float(features.get(name, 0.0))
            values.append(v if math.isfinite(v) else 0.0)
        x = np.asarray(values, dtype=np.float64)
        if self.lower and self.upper:  # never extrapolate beyond what was fitted
            x = np.clip(x, self.lower, self.upper)
        return x

    def predict_raw(self, features: Mapping[str, float]) -> float:
        """The unrounded score (0-5) for one answer's features."""
        x = self._vector(features)
        z = float(np.dot((x - np.asarray(self.mean)) / np.asarray(self.scale), self.coef))
        linear = float(np.interp(z + self.intercept, self.iso_x, self.iso_y))
        boosted = self.gbm_init + self.gbm_learning_rate * sum(t.predict(x) for t in self.trees)
        value = self.blend * linear + (1.0 - self.blend) * boosted
        return min(5.0, max(0.0, value))

    def predict(self, features: Mapping[str, float]) -> float:
        """The score for one answer's features: 0-5, one decimal."""
        return round_score(self.predict_raw(features))

    def coverage(self, similarity: float) -> float:
        """A rubric point's 0-1 coverage from its best span similarity."""
        z = self.coverage_slope * float(similarity) + self.coverage_intercept
        return round(1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z)))), 4)

    def verdict(self, coverage: float) -> Verdict:
        if coverage >= self.covered_threshold:
            return Verdict.covered
        if coverage >= self.partial_threshold:
            return Verdict.partial
        return Verdict.missing

    # -- persistence --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "feature_names": self.feature_names,
            "model": "blend * isotonic(ridge(standardised x)) + (1 - blend) * boosted trees(x), "
            "x = features clipped to their training range",
            "parameters": {
                "blend": self.blend,
                "feature_range": {"lower": self.lower, "upper": self.upper},
                "ridge": {
                    "mean": self.mean,
                    "scale": self.scale,
                    "coef": self.coef,
                    "intercept": self.intercept,
                },
                "isotonic": {"x": self.iso_x, "y": self.iso_y},
                "gbm": {
                    "init": self.gbm_init,
                    "learning_rate": self.gbm_learning_rate,
                    "trees": [t.__dict__ for t in self.trees],
                },
                "coverage": {
                    "slope": self.coverage_slope,
                    "intercept": self.coverage_intercept,
                },
                "verdict_thresholds": {
                    "covered": self.covered_threshold,
                    "partial": self.partial_threshold,
                },
            },
            **self.meta,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        p = data["parameters"]
        known = {"version", "feature_names", "model", "parameters"}
        return cls(
            version=str(data["version"]),
            feature_names=list(data["feature_names"]),
            mean=list(p["ridge"]["mean"]),
            scale=list(p["ridge"]["scale"]),
            coef=list(p["ridge"]["coef"]),
            intercept=float(p["ridge"]["intercept"]),
            iso_x=list(p["isotonic"]["x"]),
            iso_y=list(p["isotonic"]["y"]),
            gbm_init=float(p["gbm"]["init"]),
            gbm_learning_rate=float(p["gbm"]["learning_rate"]),
            trees=[_Tree(**t) for t in p["gbm"]["trees"]],
            lower=[float(v) for v in p.get("feature_range", {}).get("lower", [])],
            upper=[float(v) for v in p.get("feature_range", {}).get("upper", [])],
            blend=float(p["blend"]),
            coverage_slope=float(p["coverage"]["slope"]),
            coverage_intercept=float(p["coverage"]["intercept"]),
            covered_threshold=float(p["verdict_thresholds"]["covered"]),
            partial_threshold=float(p["verdict_thresholds"]["partial"]),
            meta={k: v for k, v in data.items() if k not in known},
        )

    @classmethod
    def load(cls, path: Path | None = None) -> Calibration:
        """Read a versioned artifact (the shipped :data:`DEFAULT_PATH` by default)."""
        path = Path(path) if path is not None else DEFAULT_PATH
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise FileNotFoundError(
                f"calibration artifact not found: {path} (run `python -m evals.fit_calibration`)"
            ) from exc
        return cls.from_dict(data)

    def save(self, path: Path | None = None) -> Path:
        path = Path(path) if path is not None else DEFAULT_PATH
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        return path

    # -- fitting (scripts and evaluation only) ------------------------------------------------

    @classmethod
    def fit(
        cls,
        features: Sequence[Mapping[str, float]],
        scores: Sequence[float] | np.ndarray,
        feature_names: Sequence[str],
        *,
        point_similarities: Sequence[float] | np.ndarray = (),
        point_scores: Sequence[float] | np.ndarray = (),
        sample_weight: Sequence[float] | np.ndarray | None = None,
        version: str = DEFAULT_VERSION,
        meta: Mapping[str, Any] | None = None,
    ) -> Calibration:
        """Fit on answers' features and human scores (non-answers excluded by the caller).

        ``point_similarities``/``point_scores`` (each rubric point's best similarity and its
        answer's human score) fit the coverage curve; without them the default curve stays.
        """
        from sklearn.ensemble import GradientBoostingRegressor
        from sklearn.isotonic import IsotonicRegression
        from sklearn.linear_model import LogisticRegression, Ridge

        names = list(feature_names)
        X = np.asarray([[float(f.get(n, 0.0)) for n in names] for f in features], dtype=float)
        y = np.asarray(scores, dtype=float)
        mean = X.mean(axis=0)
        scale = X.std(axis=0)
        scale[scale < 1e-9] = 1.0
        Z = (X - mean) / scale
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
        ridge = Ridge(alpha=RIDGE_ALPHA).fit(Z, y, sample_weight=w)
        linear = ridge.predict(Z)
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=5.0).fit(linear, y, sample_weight=w)
        gbm = GradientBoostingRegressor(**GBM_PARAMS).fit(X, y, sample_weight=w)
        trees = []
        for est in gbm.estimators_[:, 0]:
            t = est.tree_
            trees.append(
                _Tree(
                    feature=[int(v) for v in t.feature],
                    threshold=[float(v) for v in t.threshold],
                    left=[int(v) for v in t.children_left],
                    right=[int(v) for v in t.children_right],
                    value=[float(v) for v in t.value[:, 0, 0]],
                )
            )
        slope, intercept = 5.7, -2.8
        sims = np.asarray(point_similarities, dtype=float)
        psc = np.asarray(point_scores, dtype=float)
        if len(sims) and len(sims) == len(psc):
            # Points of good answers (>= 4) against points of poor ones (<= 2.5), balanced,
            # so that coverage 0.5 is where either is as likely.
            sel = (psc >= 4.0) | (psc <= 2.5)
            labels = (psc[sel] >= 4.0).astype(int)
            if 0 < labels.sum() < len(labels):
                lr = LogisticRegression(class_weight="balanced")
                lr.fit(sims[sel, None], labels)
                slope, intercept = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        calibration = cls(
            version=version,
            feature_names=names,
            mean=[float(v) for v in mean],
            scale=[float(v) for v in scale],
            coef=[float(v) for v in ridge.coef_],
            intercept=float(ridge.intercept_),
            iso_x=[float(v) for v in iso.X_thresholds_],
            iso_y=[float(v) for v in iso.y_thresholds_],
            gbm_init=float(np.average(y, weights=w)),
            gbm_learning_rate=float(GBM_PARAMS["learning_rate"]),
            trees=trees,
            lower=[float(v) for v in X.min(axis=0)],
            upper=[float(v) for v in X.max(axis=0)],
            coverage_slope=slope,
            coverage_intercept=intercept,
            meta=dict(meta or {}),
        )
        # The JSON model must reproduce scikit-learn's predictions exactly (on training rows,
        # which the clipping to the training range leaves unchanged).
        check = X[: min(len(X), 50)]
        ours = np.array(
            [calibration.gbm_init + calibration.gbm_learning_rate * sum(t.predict(x) for t in trees) for x in check]
        )
        if not np.allclose(ours, gbm.predict(check), atol=1e-6):
            raise RuntimeError("exported boosted trees disagree with scikit-learn")
        return calibration
