"""Human-labelled (claim, answer) pairs that the learned parts of the grader are fitted on.

Sources, each read where it lives (never copied into the repository):

* ``semeval``: SemEval-2013 Task 7 training answers (``../shared/datasets/semeval2013/``),
  annotators' 2-way labels, correct = 1, incorrect = 0; the claim is the best reference answer.
* ``mohler``: Mohler et al. 2011 (``../shared/datasets/mohler/``), the averaged 0-5 human score
  divided by 5 as a soft label; the claim is the reference answer.
* ``gold``: the project's gold set, train split only (its test split is never fitted on), the
  score divided by 5. Written in the project, so it is used for regression, not as evidence.
* ``bank``: the bank's own rubric points against their plain-language variants (1), the
  misconceptions that contradict them (0) and the question's other points (0), so that the same
  words in the wrong relation, or on the same topic, do not read as the point. Also written in
  the project.

Every pair carries a ``group`` (source and question; the gold set's answers share their bank
question's group) so that cross-validation never puts one question in both fitting and scoring.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.config import REPO_ROOT
from evals.mohler import CSV_NAME as MOHLER_CSV
from evals.mohler import DEFAULT_DATA_DIR as MOHLER_DEFAULT_DIR
from evals.mohler import load_rows as load_mohler_rows

if TYPE_CHECKING:
    from app.bank.loader import Bank

SHARED = REPO_ROOT.parent / "shared" / "datasets"
SEMEVAL_DIR = SHARED / "semeval2013"
SEMEVAL_CSV = "semeval2013_task7_2way_train.csv"
MOHLER_DIR = MOHLER_DEFAULT_DIR


class DataMissing(Exception):
    """A data set is not where it was looked for (the message says where)."""


@dataclass(frozen=True)
class Pair:
    source: str
    group: str
    """``source:question`` - the unit of cross-validation."""
    claim: str
    answer: str
    label: float
    """0-1: 1 = the answer states the claim correctly."""
    item_id: str
    question: str = ""
    all_claims: tuple[str, ...] = ()
    """Every reference answer of the question (SemEval lists several)."""
    dataset: str = ""


def semeval_pairs(data_dir: Path = SEMEVAL_DIR) -> list[Pair]:
    path = Path(data_dir) / SEMEVAL_CSV
    if not path.is_file():
        raise DataMissing(f"SemEval-2013 data not found at {path}")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [
        Pair(
            source="semeval",
            group=f"semeval:{r['question_id']}",
            claim=r["reference_answer"],
            answer=r["student_answer"],
            label=1.0 if r["label_2way"].strip() == "correct" else 0.0,
            item_id=r["answer_id"],
            question=r["question"],
            all_claims=tuple(c.strip() for c in r["all_reference_answers"].split(" || ") if c.strip()),
            dataset=r["dataset"],
        )
        for r in rows
    ]


def mohler_pairs(data_dir: Path = MOHLER_DIR) -> list[Pair]:
    path = Path(data_dir) / MOHLER_CSV
    if not path.is_file():
        raise DataMissing(f"Mohler data not found at {path}")
    rows = load_mohler_rows(data_dir)
    return [
        Pair(
            source="mohler",
            group=f"mohler:{r['question_id']}",
            claim=r["reference_answer"],
            answer=r["student_answer"],
            label=min(1.0, max(0.0, float(r["score_avg"]) / 5.0)),
            item_id=f"mohler-{i}",
            question=r["question"],
            all_claims=(r["reference_answer"],),
        )
        for i, r in enumerate(rows)
    ]


def gold_pairs() -> list[Pair]:
    """The gold set's train split: each answer against its question's reference answer."""
    from evals.gold import load_gold, test_questions

    bank = _bank()
    held_out = test_questions()
    out = []
    for item in load_gold():
        q = bank.get(item.question_id)
        if item.question_id in held_out or q is None:
            continue
        out.append(
            Pair(
                source="gold",
                group=f"bank:{item.question_id}",  # one group with the question's bank pairs
                claim=q.reference_answer,
                answer=item.answer,
                label=item.human_score / 5.0,
                item_id=item.id,
                question=q.question,
                all_claims=(q.reference_answer,),
            )
        )
    return out


def bank_pairs() -> list[Pair]:
    """Rubric points against their variants (1) and their misconceptions (0), both ways.

    The gold set's test-split questions are left out, so that its figures stay held out."""
    from evals.gold import test_questions

    held_out = test_questions()
    out = []
    for q in _bank().questions.values():
        if q.id in held_out:
            continue
        group = f"bank:{q.id}"
        for r in q.rubric:
            for j, v in enumerate(r.variants):
                out.append(Pair("bank", group, r.point, v, 1.0, f"{q.id}:{r.id}:v{j}", q.question))
                out.append(Pair("bank", group, v, r.point, 1.0, f"{q.id}:{r.id}:v{j}:rev", q.question))
        # Other points of the same question are the hardest negatives: same topic, same words,
        # a different claim. Without them the head reads "on topic" as "states this point".
        for a in q.rubric:
            for b in q.rubric:
                if a.id != b.id:
                    out.append(Pair("bank", group, a.point, b.point, 0.0, f"{q.id}:{a.id}~{b.id}", q.question))
                    for j, v in enumerate(b.variants[:1]):
                        out.append(Pair("bank", group, a.point, v, 0.0, f"{q.id}:{a.id}~{b.id}:v{j}", q.question))
        points = {r.id: r for r in q.rubric}
        for m in q.misconceptions:
            point = points[m.contradicts]
            out.append(Pair("bank", group, point.point, m.statement, 0.0, f"{q.id}:{m.id}", q.question))
            out.append(Pair("bank", group, m.statement, point.point, 0.0, f"{q.id}:{m.id}:rev", q.question))
            for j, v in enumerate(point.variants):
                out.append(Pair("bank", group, v, m.statement, 0.0, f"{q.id}:{m.id}:v{j}", q.question))
    return out


def _bank() -> Bank:
    from app.bank.loader import bank_folders, load_bank

    return load_bank(bank_folders())[0]
