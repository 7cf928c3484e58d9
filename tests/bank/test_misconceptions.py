"""Misconceptions and variants: the schema, `bank validate`, and the bundled bank."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from app.bank.loader import Bank, bank_folders, load_bank
from app.bank.schemas import BankQuestion
from app.bank.validation import grading_knowledge
from tests.conftest import FIXTURES

BASE: dict[str, Any] = yaml.safe_load((FIXTURES / "bank" / "good" / "demo" / "alpha.yaml").read_text())["questions"][0]


def _question(**changes: Any) -> dict[str, Any]:
    q = copy.deepcopy(BASE)
    q.update(changes)
    return q


def test_misconception_must_contradict_a_known_point() -> None:
    bad = _question(
        misconceptions=[
            {"id": "m1", "contradicts": "r9", "statement": "Alpha always means the opposite of what it says."}
        ]
    )
    with pytest.raises(ValidationError, match=r"misconceptions contradict unknown rubric ids: m1 -> r9"):
        BankQuestion.model_validate(bad)


def test_misconception_cannot_restate_its_point_or_repeat_an_id() -> None:
    point = BASE["rubric"][0]["point"]
    with pytest.raises(ValidationError, match="must differ from the point"):
        BankQuestion.model_validate(_question(misconceptions=[{"id": "m1", "contradicts": "r1", "statement": point}]))
    twice = [{"id": "m1", "contradicts": "r1", "statement": "Alpha is a kind of beta in disguise, always."}] * 2
    with pytest.raises(ValidationError, match="duplicate misconception ids: m1"):
        BankQuestion.model_validate(_question(misconceptions=twice))


def test_variants_are_sentences_and_reach_the_rubric_points() -> None:
    rubric = copy.deepcopy(BASE["rubric"])
    rubric[0]["variants"] = ["too short"]
    with pytest.raises(ValidationError, match="5\\+ words"):
        BankQuestion.model_validate(_question(rubric=rubric))
    rubric[0]["variants"] = ["Say in plain words what alpha is for."]
    q = BankQuestion.model_validate(_question(rubric=rubric))
    points = {p.id: p for p in q.rubric_points()}
    assert points["r1"].variants == ["Say in plain words what alpha is for."]
    assert points["r1"].misconceptions == [m.statement for m in q.misconceptions if m.contradicts == "r1"]


def test_validate_requires_misconceptions_and_no_claim_on_both_sides() -> None:
    q = BankQuestion.model_validate(_question(misconceptions=[]))
    problems = grading_knowledge(Bank(questions={q.id: q}, files={q.id: "demo/alpha.yaml"}))
    assert [p.field for p in problems] == ["demo-alpha-01.misconceptions"]
    assert "every question needs 2-4" in problems[0].message

    rubric = copy.deepcopy(BASE["rubric"])
    claim = "Alpha never matters once the system is in production."
    rubric[1]["variants"] = [claim]
    both = _question(
        rubric=rubric,
        misconceptions=[
            {"id": "m1", "contradicts": "r1", "statement": claim},
            {"id": "m2", "contradicts": "r3", "statement": "There is no trade-off with alpha at all, ever."},
        ],
    )
    q = BankQuestion.model_validate(both)
    problems = grading_knowledge(Bank(questions={q.id: q}, files={q.id: "demo/alpha.yaml"}))
    assert len(problems) == 1 and "is also a variant of r2" in problems[0].message


def test_bundled_bank_carries_misconceptions_and_variants_everywhere() -> None:
    bank, problems = load_bank(bank_folders())
    assert problems == [] and grading_knowledge(bank) == []
    for q in bank.questions.values():
        assert 2 <= len(q.misconceptions) <= 4, q.id
        assert len({m.contradicts for m in q.misconceptions}) >= 2 or len(q.misconceptions) == 2, q.id
        assert all(r.variants for r in q.rubric), q.id


def test_the_bank_readme_example_is_a_valid_question() -> None:
    text = (Path(__file__).parents[2] / "question_bank" / "README.md").read_text(encoding="utf-8")
    block = text.split("```yaml", 1)[1].split("```", 1)[0]
    [q] = yaml.safe_load(block)["questions"]
    question = BankQuestion.model_validate(q)
    assert question.misconceptions and all(r.variants for r in question.rubric[:2])
    assert grading_knowledge(Bank(questions={question.id: question}, files={question.id: "README.md"})) == []
