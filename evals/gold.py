"""The human-scored gold set: graded answers to bank questions, and invariance pairs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field

from app.bank.loader import Bank
from app.config import resource_dir
from app.grading.schemas import GradeInput

DATASETS = resource_dir("evals", "datasets")
DEFAULT_GOLD = DATASETS / "gold-v1.jsonl"
DEFAULT_PAIRS = DATASETS / "pairs-v1.jsonl"
SPLITS = DATASETS / "splits-v1.yaml"

CATEGORIES = (
    "excellent",
    "good",
    "partial",
    "paraphrase",
    "misconception",
    "off-topic",
    "jargon",
    "padding",
    "injection",
    "empty",
    "swapped-facts",
    "keyword-list",
    "terse-correct",
    "plain-words",
    "reviewer-override",
)


class GoldItem(BaseModel):
    id: str
    question_id: str
    answer: str
    human_score: float = Field(ge=0, le=5)
    rationale: str
    category: str


class PairItem(BaseModel):
    id: str
    question_id: str
    kind: Literal["paraphrase", "padding", "injection"]
    base: str
    variant: str
    human_score: float = Field(ge=0, le=5)


def _jsonl(path: Path) -> list[dict[str, object]]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
    return rows


def load_gold(path: Path = DEFAULT_GOLD) -> list[GoldItem]:
    return [GoldItem.model_validate(r) for r in _jsonl(path)]


def load_pairs(path: Path = DEFAULT_PAIRS) -> list[PairItem]:
    return [PairItem.model_validate(r) for r in _jsonl(path)] if path.exists() else []


def test_questions(path: Path = SPLITS) -> set[str]:
    """Question ids held out as the test split (calibration never sees them)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return set(data["test"])


def split_of(question_id: str, held_out: set[str]) -> str:
    return "test" if question_id in held_out else "train"


def grade_input(bank: Bank, question_id: str, answer: str) -> GradeInput:
    q = bank.get(question_id)
    if q is None:
        raise ValueError(f"gold item refers to unknown bank question {question_id!r}")
    return GradeInput(
        question=q.question,
        reference_answer=q.reference_answer,
        answer=answer,
        rubric=q.rubric_points(),
        question_id=q.id,
        bank_hash=q.content_hash,
    )
