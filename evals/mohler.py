"""How well the embedding grader agrees with human graders on Mohler et al. (2011).

Question-grouped k-fold cross-validation: the questions are shuffled (seeded) and dealt into
``folds`` folds; for each fold the calibration is fitted on the answers to the other folds'
questions and scores the answers to this fold's questions, so no question is ever in both.
Figures are Pearson r, RMSE and Spearman against ``score_avg`` over all included answers
(non-answers included, scored 0 as the grader scores them), beside the raw-cosine baselines
and the published anchors of the dataset's README.

The data is read from ``../shared/datasets/mohler/``; it is never copied into the repository.
This is the feature-only cross-validation behind ``calibration-v1`` (``evals/fit_calibration.py``);
the grader as it ships now is measured by ``mockinterview eval mohler`` (``evals/human_eval.py``).
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.config import REPO_ROOT

CSV_NAME = "mohler2011_texas_v2.csv"
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "datasets" / "mohler"
ANCHORS = {
    "MiniLM cosine + isotonic (README, grouped 5-fold)": (0.470, 0.976),
    "Sultan et al. 2016 (best published feature-based)": (0.592, 0.887),
    "Saha et al. 2018": (0.570, 0.902),
    "Mohler et al. 2011 SVR (best of 0.43-0.52)": (0.52, 1.0),
}
HUMAN_AGREEMENT = 0.60


@dataclass
class MohlerFeatures:
    """Every included answer of the data set, analysed once by the embedding grader."""

    features: list[dict[str, float]]
    scores: np.ndarray
    questions: np.ndarray
    non_answer: np.ndarray
    cosine: np.ndarray
    """Raw cosine of the answer to the reference answer (the baseline's only input)."""
    point_similarities: list[list[float]]
    encoder_name: str
    seconds: float


def load_rows(data_dir: Path) -> list[dict[str, str]]:
    with open(Path(data_dir) / CSV_NAME, newline="", encoding="utf-8") as fh:
        return [r for r in csv.DictReader(fh) if r["excluded_in_mohler2011"].strip() == "0"]


def analyse_mohler(data_dir: Path, encoder: Any = None, chunk: int = 512) -> MohlerFeatures:
    """Encode and featurise every included answer once (about 20 s on two CPU cores)."""
    from app.grading.embedding import Encoder
    from app.grading.embedding_grader import analyse
    from app.grading.schemas import GradeInput

    started = time.perf_counter()
    rows = load_rows(data_dir)
    encoder = encoder if encoder is not None else Encoder()
    items = [
        GradeInput(
            question=r["question"],
            reference_answer=r["reference_answer"],
            answer=r["student_answer"],
            question_id=r["question_id"],
        )
        for r in rows
    ]
    analyses = []
    for start in range(0, len(items), chunk):
        analyses.extend(analyse(encoder, items[start : start + chunk]))
    features: list[dict[str, float]] = []
    cosine = np.zeros(len(items))
    points: list[list[float]] = []
    non_answer = np.zeros(len(items), dtype=bool)
    for i, a in enumerate(analyses):
        if a.computed is None:
            non_answer[i] = True
            features.append({})
            points.append([])
        else:
            features.append(a.computed.features)
            cosine[i] = a.computed.features["cos_ref"]
            points.append([m.similarity for m in a.computed.matches])
    # The baseline is the cosine of the raw answer: re-encode the few answers the grader
    # cleaned (question echoes dropped) or did not encode at all (non-answers).
    changed = [
        i for i, a in enumerate(analyses) if a.computed is None or a.prepared.answer != items[i].answer
    ]
    if changed:
        idx = np.array(changed)
        va = encoder.encode([items[i].answer for i in idx])
        vr = encoder.encode_cached([items[i].reference_answer for i in idx])
        cosine[idx] = np.sum(va * vr, axis=1)
    return MohlerFeatures(
        features=features,
        scores=np.array([float(r["score_avg"]) for r in rows]),
        questions=np.array([r["question_id"] for r in rows]),
        non_answer=non_answer,
        cosine=cosine,
        point_similarities=points,
        encoder_name=encoder.name,
        seconds=time.perf_counter() - started,
    )


def question_folds(questions: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold number of every row: shuffled questions dealt round-robin into ``folds``."""
    unique = np.array(sorted(set(questions.tolist())))
    rng = np.random.default_rng(seed)
    rng.shuffle(unique)
    fold_of = {q: i % folds for i, q in enumerate(unique.tolist())}
    return np.array([fold_of[q] for q in questions.tolist()])


def figures(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    from scipy.stats import pearsonr, spearmanr

    return {
        "pearson": round(float(pearsonr(pred, y)[0]), 4),
        "rmse": round(float(np.sqrt(np.mean((pred - y) ** 2))), 4),
        "spearman": round(float(spearmanr(pred, y)[0]), 4),
    }


def cross_validate(data: MohlerFeatures, folds: int = 5, seed: int = 0) -> dict[str, Any]:
    """Question-grouped CV of the calibrated grader and of the cosine+isotonic baseline."""
    from sklearn.isotonic import IsotonicRegression

    from app.grading.calibration import Calibration
    from app.grading.features import SCORING_FEATURES

    y = data.scores
    fold = question_folds(data.questions, folds, seed)
    pred = np.zeros(len(y))
    base = np.zeros(len(y))
    per_fold = []
    for k in range(folds):
        train = np.flatnonzero((fold != k) & ~data.non_answer)
        test = np.flatnonzero(fold == k)
        assert not set(data.questions[train]) & set(data.questions[test])
        cal = Calibration.fit([data.features[i] for i in train], y[train], SCORING_FEATURES)
        for i in test:
            pred[i] = 0.0 if data.non_answer[i] else cal.predict(data.features[i])
        all_train = np.flatnonzero(fold != k)
        iso = IsotonicRegression(out_of_bounds="clip").fit(data.cosine[all_train], y[all_train])
        base[test] = np.round(iso.predict(data.cosine[test]), 1)
        per_fold.append(
            {"fold": k, "questions": len(set(data.questions[test])), "n": len(test)}
            | figures(pred[test], y[test])
        )
    return {
        "grader": figures(pred, y),
        "baseline_cosine_isotonic": figures(base, y),
        "per_fold": per_fold,
        "predictions": pred,
    }
