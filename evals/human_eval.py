"""``mockinterview eval semeval`` and ``eval mohler``: the grader against real human labels.

Both run :func:`evals.human_cv.cross_validate` (every answer of SemEval-2013, Mohler 2011 and
the gold set graded out of fold, the calibration cross-validated by question) and print the
figures of their data set beside plain cosine, then grade the same answers with the shipped
grader as it is (no refitting) and print those too. The cross-validated figures are the
evidence. The shipped figures are not a fair in-sample bound either way: the shipped head was
trained on these answers, but the calibration reads head outputs as they are on unseen
questions (it was fitted on out-of-fold ones), so on the head's own training answers the two
disagree. Users meet unseen questions, where the cross-validated figures apply.

A figure below its gate in ``evals/thresholds.yaml`` (``human: gate:``, set a little below the
figures when the grader last changed) makes the command exit 1; the ``targets:`` there are
reported as met or not yet met. Missing data makes it exit 2 with the path it looked in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from evals.human_cv import cross_validate, load_rows, source_figures
from evals.human_data import MOHLER_DIR, SEMEVAL_DIR

NAMES = {"semeval": "SemEval-2013 Task 7 (2-way, training split)", "mohler": "Mohler et al. 2011"}


def shipped_figures(rows: list[dict[str, Any]], source: str) -> dict[str, Any]:
    """The shipped grader, as it is, on every answer of ``source`` (in-sample: it was fitted on them)."""
    from rich.progress import track

    from app.grading.embedding import Encoder
    from app.grading.embedding_grader import EmbeddingGrader

    grader = EmbeddingGrader(Encoder())
    sub = [r for r in rows if r["source"] == source]
    scores: list[float] = []
    cos: list[float] = []
    for start in track(range(0, len(sub), 256), description=f"grading {source} with the shipped grader"):
        for ev in grader.grade_batch([r["input"] for r in sub[start : start + 256]]):
            scores.append(ev.score)
            cos.append(ev.features.get("cos_ref", 0.0))
    return source_figures(sub, np.array(scores), np.array(cos))[source]


def run(source: str, data: Path | None, thresholds: dict[str, Any], console: Console, as_json: bool = False) -> int:
    semeval_dir, mohler_dir = SEMEVAL_DIR, MOHLER_DIR
    if source == "semeval":
        semeval_dir = data or SEMEVAL_DIR
    else:
        mohler_dir = data or MOHLER_DIR
    rows = load_rows(semeval_dir=semeval_dir, mohler_dir=mohler_dir)
    cv = cross_validate(rows)
    figures = {"cross_validated": cv.figures[source], "shipped_in_sample": shipped_figures(rows, source)}
    failures = check(source, figures["cross_validated"], thresholds.get("gate", {}).get(source, {}))
    misses = check(source, figures["cross_validated"], thresholds.get("targets", {}).get(source, {}))
    if as_json:
        print(json.dumps(figures | {"failures": failures, "targets_not_met": misses}, indent=1))
    else:
        _print(source, figures, failures, misses, console)
    return 1 if failures else 0


def check(source: str, figures: dict[str, Any], limits: dict[str, Any]) -> list[str]:
    out = []
    for name, lo in (limits.get("min") or {}).items():
        if figures.get(name, float("-inf")) < lo:
            out.append(f"{source} {name} {figures.get(name)} < {lo}")
    for name, hi in (limits.get("max") or {}).items():
        if figures.get(name, float("inf")) > hi:
            out.append(f"{source} {name} {figures.get(name)} > {hi}")
    return out


def _print(source: str, figures: dict[str, Any], failures: list[str], misses: list[str], console: Console) -> None:
    cvf, shipped = figures["cross_validated"], figures["shipped_in_sample"]
    table = Table(title=f"{NAMES[source]}: {cvf['n']} answers")
    table.add_column("system")
    keys = ["auc", "macro_f1_pass", "cosine_auc"] if source == "semeval" else ["pearson", "rmse", "cosine_pearson"]
    for k in keys:
        table.add_column(k, justify="right")
    table.add_row("this grader, question-grouped 5-fold CV", *(f"{cvf[k]:.3f}" for k in keys))
    table.add_row("shipped grader as it is (its head saw these questions)", *(f"{shipped[k]:.3f}" for k in keys))
    console.print(table)
    if source == "semeval":
        for name in ("beetle", "scientsbank"):
            sub = cvf.get(name, {})
            console.print(f"  {name}: AUC {sub.get('auc')}, macro-F1 {sub.get('macro_f1_pass')} (CV)")
    for m in misses:
        console.print(f"[yellow]target not met yet:[/yellow] {m}")
    for f in failures:
        console.print(f"[red]below the gate:[/red] {f}")
    if not failures:
        console.print("gate met" + ("" if misses else "; all targets met"))
