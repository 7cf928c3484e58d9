"""Fit the in-domain calibration (``calibration-v2``) on the gold set's TRAIN split.

The Mohler-fitted ``calibration-v1`` learned a course where nearly every answer is on topic
(mean score 4.2), so on interview answers it is far too lenient (off-topic and padded answers
around 4). This fits the same features to the human scores of the gold set's train questions,
optionally with Mohler answers added, chooses between the two by question-grouped 5-fold CV on
the train split only, and reports the held-out test split once, for the record. The test
questions (``evals/datasets/splits-v1.yaml``) never reach the fit.

    python -m evals.fit_gold_calibration [--mohler DIR] [--out app/grading/artifacts/calibration-v2.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.bank.loader import bank_folders, load_bank
from app.grading.calibration import DEFAULT_PATH, Calibration
from app.grading.embedding import Encoder
from app.grading.embedding_grader import EmbeddingGrader
from app.grading.features import SCORING_FEATURES
from evals.gold import grade_input, load_gold, split_of, test_questions
from evals.metrics import all_metrics

V1 = DEFAULT_PATH.parent / "calibration-v1.json"
OUT = DEFAULT_PATH.parent / "calibration-v2.json"


def _features(grader: EmbeddingGrader, inputs: Sequence[Any]) -> tuple[list[dict[str, float]], np.ndarray]:
    evidence = grader.grade_batch(list(inputs))
    return [e.features for e in evidence], np.array([e.non_answer for e in evidence])


def _predict(cal: Calibration, feats: Sequence[dict[str, float]], non_answer: np.ndarray) -> np.ndarray:
    return np.array([0.0 if na else cal.predict(f) for f, na in zip(feats, non_answer, strict=True)])


def _cv(
    feats: list[dict[str, float]],
    y: np.ndarray,
    na: np.ndarray,
    groups: np.ndarray,
    extra: tuple[list[dict[str, float]], np.ndarray] | None,
    seed: int = 0,
) -> dict[str, float]:
    keys = np.array(sorted(set(groups.tolist())))
    rng = np.random.default_rng(seed)
    rng.shuffle(keys)
    folds = np.array_split(keys, 5)
    pred = np.zeros_like(y)
    for fold in folds:
        test = np.isin(groups, fold)
        fit_rows = ~test & ~na
        f = [feats[i] for i in np.flatnonzero(fit_rows)]
        t = y[fit_rows]
        if extra is not None:
            f, t = f + extra[0], np.concatenate([t, extra[1]])
        cal = Calibration.fit(f, t, SCORING_FEATURES)
        idx = np.flatnonzero(test)
        pred[idx] = _predict(cal, [feats[i] for i in idx], na[idx])
    return {k: round(v, 4) for k, v in all_metrics(pred.tolist(), y.tolist()).items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mohler", type=Path, default=Path(__file__).resolve().parents[2] / "shared/datasets/mohler")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)

    v1 = Calibration.load(V1)
    grader = EmbeddingGrader(Encoder(), v1)
    bank, _ = load_bank(bank_folders())
    held_out = test_questions()
    items = load_gold()
    train = [it for it in items if split_of(it.question_id, held_out) == "train"]
    test = [it for it in items if split_of(it.question_id, held_out) == "test"]
    tr_feats, tr_na = _features(grader, [grade_input(bank, it.question_id, it.answer) for it in train])
    te_feats, te_na = _features(grader, [grade_input(bank, it.question_id, it.answer) for it in test])
    y = np.array([it.human_score for it in train])
    groups = np.array([it.question_id for it in train])

    mohler = None
    if args.mohler.is_dir():
        from evals.mohler import analyse_mohler

        data = analyse_mohler(args.mohler)
        live = np.flatnonzero(~data.non_answer)
        mohler = ([data.features[i] for i in live], np.asarray(data.scores, dtype=float)[live])

    candidates: dict[str, tuple[list[dict[str, float]], np.ndarray] | None] = {"gold-train": None}
    if mohler is not None:
        candidates["gold-train+mohler"] = mohler
    cv = {name: _cv(tr_feats, y, tr_na, groups, extra) for name, extra in candidates.items()}
    for name, figures in cv.items():
        print(f"{name}: question-grouped 5-fold CV on the train split: {figures}", file=sys.stderr)
    best = max(cv, key=lambda n: cv[n]["pearson"] - cv[n]["mae"] / 5)
    extra = candidates[best]

    live = ~tr_na
    f = [tr_feats[i] for i in np.flatnonzero(live)]
    t = y[live]
    if extra is not None:
        f, t = f + extra[0], np.concatenate([t, extra[1]])
    cal = Calibration.fit(
        f,
        t,
        SCORING_FEATURES,
        version="calibration-v2",
        meta={
            "training_data": {
                "dataset": "evals/datasets/gold-v1.jsonl, train split only (splits-v1.yaml)"
                + (" plus Mohler et al. (2011) included answers" if extra is not None else ""),
                "answers": len(t),
                "gold_train_questions": len(set(groups.tolist())),
                "chosen_by": "question-grouped 5-fold CV on the train split (test split never used to choose)",
            },
            "cross_validation_train_split": cv,
        },
    )
    # Rubric-point coverage keeps v1's curve (fitted on Mohler's point similarities).
    cal.coverage_slope, cal.coverage_intercept = v1.coverage_slope, v1.coverage_intercept
    test_pred = _predict(cal, te_feats, te_na)
    held = {k: round(v, 4) for k, v in all_metrics(test_pred.tolist(), [it.human_score for it in test]).items()}
    cal.meta["held_out_test_split"] = held | {"answers": len(test)}
    cal.save(args.out)
    print(json.dumps({"chosen": best, "cv": cv[best], "held_out_test": held}, indent=1))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
