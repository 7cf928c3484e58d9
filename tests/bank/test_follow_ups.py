"""Follow-ups are graded against what they ask: a probing one against its point, a deeper one
against its own reference answer and rubric (never the question's points)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from app.bank.loader import bank_folders, load_bank
from app.bank.schemas import BankQuestion
from app.interview.service import InterviewService
from tests.conftest import FIXTURES

BASE: dict[str, Any] = yaml.safe_load((FIXTURES / "bank" / "good" / "demo" / "alpha.yaml").read_text())["questions"][0]
DEEPER = next(f for f in BASE["follow_ups"] if f.get("deeper"))


def _with_follow_ups(*follow_ups: dict[str, Any]) -> dict[str, Any]:
    q = copy.deepcopy(BASE)
    q["follow_ups"] = list(follow_ups)
    return q


def test_a_deeper_follow_up_without_its_own_rubric_is_refused() -> None:
    bare = {"question": DEEPER["question"], "deeper": True}
    with pytest.raises(ValidationError, match="needs its own reference_answer and a rubric"):
        BankQuestion.model_validate(_with_follow_ups(bare))
    one_point = {**DEEPER, "rubric": DEEPER["rubric"][:1]}
    with pytest.raises(ValidationError, match="rubric of 2-4 points"):
        BankQuestion.model_validate(_with_follow_ups(one_point))
    not_essential = {**DEEPER, "rubric": [{**r, "essential": False} for r in DEEPER["rubric"]]}
    with pytest.raises(ValidationError, match="must be essential"):
        BankQuestion.model_validate(_with_follow_ups(not_essential))


def test_a_probing_follow_up_cannot_carry_a_rubric() -> None:
    probing = {"question": "Can you give an example of alpha?", "probes": "r2", "rubric": DEEPER["rubric"]}
    with pytest.raises(ValidationError, match="graded against it"):
        BankQuestion.model_validate(_with_follow_ups(probing))


def test_each_turn_is_graded_against_what_it_asked() -> None:
    q = BankQuestion.model_validate(BASE)
    parent_ids = [r.id for r in q.rubric]
    main = InterviewService.input_for(q, q.question, None, "an answer")
    assert [p.id for p in main.rubric] == parent_ids
    assert main.reference_answer == q.reference_answer

    probing = next(f for f in q.follow_ups if f.probes)
    inp = InterviewService.input_for(q, probing.question, probing.probes, "an answer")
    assert [p.id for p in inp.rubric] == [probing.probes]

    deeper = next(f for f in q.follow_ups if f.deeper)
    # Stored question text may be wrapped differently from the bank's.
    asked = deeper.question.replace(" ", "\n  ", 1)
    inp = InterviewService.input_for(q, asked, None, "an answer")
    assert [p.id for p in inp.rubric] == [r.id for r in deeper.rubric]
    assert not {p.text for p in inp.rubric} & {r.point for r in q.rubric}
    assert inp.reference_answer == deeper.reference_answer
    assert inp.bank_hash != main.bank_hash  # cached embeddings of the two never mix


def test_every_deeper_follow_up_in_the_bundled_bank_has_its_own_rubric() -> None:
    bank, problems = load_bank(bank_folders(), strict=False)
    assert not problems
    deeper = [(q.id, f) for q in bank.questions.values() for f in q.follow_ups if f.deeper]
    assert len(deeper) >= 100
    for qid, f in deeper:
        assert f.reference_answer and len(f.rubric) >= 2, qid
        inp = InterviewService.input_for(bank.questions[qid], f.question, None, "")
        assert {p.text for p in inp.rubric} == {r.point for r in f.rubric}, qid
