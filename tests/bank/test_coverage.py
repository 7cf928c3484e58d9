"""COVERAGE.md maps every seed question to the bank questions that cover it."""

from __future__ import annotations

import re
from pathlib import Path

from app.bank.loader import Bank

COVERAGE = Path(__file__).resolve().parents[2] / "question_bank" / "COVERAGE.md"
SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"
ROW = re.compile(r"^\|\s*(?P<seed>[0-9]{3}_[0-9a-f]+\.txt)\s*\|\s*(?P<question>.+?)\s*\|\s*(?P<ids>[^|]*)\|\s*$")


def coverage_rows() -> list[dict[str, str]]:
    return [m.groupdict() for line in COVERAGE.read_text(encoding="utf-8").splitlines() if (m := ROW.match(line))]


def test_every_listed_seed_question_resolves_to_real_bank_ids(bank: Bank) -> None:
    rows = coverage_rows()
    assert len(rows) >= 80
    seed_files = {r["seed"] for r in rows}
    assert len(seed_files) == 5  # all five seed articles are mapped
    for row in rows:
        ids = [i.strip().strip("`") for i in row["ids"].split(",") if i.strip()]
        assert ids, f"{row['question']!r} has no bank id"
        unknown = [i for i in ids if i not in bank.questions]
        assert not unknown, f"{row['question']!r} maps to unknown ids {unknown}"


def test_listed_questions_come_from_the_seeds() -> None:
    if not SEEDS.is_dir():  # the seeds live beside the repository, never in it
        import pytest

        pytest.skip(f"seed articles not found at {SEEDS}")
    texts = {p.name: " ".join(p.read_text(encoding="utf-8").split()) for p in SEEDS.glob("*.txt")}
    for row in coverage_rows():
        question = row["question"].replace("\\|", "|")
        assert " ".join(question.split()) in texts[row["seed"]], f"{row['question']!r} not found in {row['seed']}"
