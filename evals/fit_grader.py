"""Fit the grader's score calibration (``calibration-v3``) on real human labels.

    python -m evals.fit_grader [--no-save]

Run after ``python -m evals.fit_pair_model``: :func:`evals.human_cv.cross_validate` grades
SemEval-2013, Mohler and the gold set out of fold with the shipped fold heads, cross-validates
the calibration on the same question-grouped folds, prints the figures per source, and this
saves the calibration fitted on all of them, with those figures, as ``calibration-v3.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from app.grading.calibration import ARTIFACT_DIR
from evals.human_cv import cross_validate, load_rows

VERSION = "calibration-v3"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--cache", type=Path, help="keep the out-of-fold analyses in this file (while fitting)")
    args = ap.parse_args(argv)
    started = time.perf_counter()

    rows = load_rows()
    cv = cross_validate(rows, version=VERSION, cache=args.cache)
    print(json.dumps(cv.figures, indent=1))
    note = {
        "fitted_on_note": "reference path: SemEval-2013 2-way training answers (correct -> 4.5, incorrect -> 1.5) "
        "and Mohler 2011 (real human labels) and the gold set's train split, each source weighted to an equal "
        "share; rubric path: the gold set's train split (chosen by CV over the sources). Both read the pair head, "
        "which was fitted on all of them. The gold test split was never fitted on.",
        "cross_validation": {
            "protocol": "question-grouped 5-fold CV on the pair head's folds; pair features out of fold (stacked)",
            **cv.figures,
        },
    }
    if not args.no_save:
        for cal in cv.finals.values():
            cal.meta |= note
            path = cal.save(ARTIFACT_DIR / f"{cal.version}.json")
            print(f"saved {path}")
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
