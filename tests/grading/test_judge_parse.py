"""The judge's reply model and tolerant parse (no HTTP): :mod:`app.grading.judge_parse`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.grading.judge_parse import (
    VERDICT_VALUES,
    JudgeParseError,
    JudgeReply,
    clean_follow_up,
    extract_json_object,
    follow_up_problem,
    parse_judge_reply,
    parse_score,
    parse_verdict,
    quote_in_answer,
    reply_json_schema,
)
from app.grading.schemas import Verdict
from tests.grading.llm_mock import ANSWER, make_input, verdict_payload


def parse(obj: dict[str, Any]) -> Any:
    inp = make_input()
    return parse_judge_reply(json.dumps(obj), rubric=inp.rubric, answer=ANSWER, prompt_version="v3", model="m")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (4, 4.0),
        (3.46, 3.5),
        ("4", 4.0),
        ("4/5", 4.0),
        ("4 / 5", 4.0),
        ("8/10", 4.0),
        ("3.5 out of 5", 3.5),
        ("Score: 2", 2.0),
        ("high", None),
        (None, None),
        (True, None),
        (float("nan"), None),
    ],
)
def test_parse_score(raw: object, expected: float | None) -> None:
    assert parse_score(raw) == expected


@pytest.mark.parametrize("raw", [7, -1, 99, "12/10", "6 out of 5"])
def test_a_score_outside_0_to_5_is_invalid_not_clamped(raw: object) -> None:
    with pytest.raises(JudgeParseError, match="outside 0-5"):
        parse_score(raw)


def test_extract_json_object_variants() -> None:
    assert extract_json_object('{"score": 3}') == {"score": 3}
    assert extract_json_object('```\n{"score": 3,}\n```') == {"score": 3}
    nested = 'The verdict: {"points": [{"id": "a"}], "score": 2} -- and {"x": 1}'
    assert extract_json_object(nested) == {"points": [{"id": "a"}], "score": 2}
    assert extract_json_object('{"reasoning": "a } inside", "score": 1}') == {
        "reasoning": "a } inside",
        "score": 1,
    }
    assert extract_json_object('Text {"reasoning": "a } inside", "score": 1} end') == {
        "reasoning": "a } inside",
        "score": 1,
    }
    assert extract_json_object("no json here") is None
    assert extract_json_object(None) is None


def test_quote_matching() -> None:
    answer = "It uses  L2\nregularisation — and “early” stopping."
    assert quote_in_answer("it uses l2 regularisation", answer)
    assert quote_in_answer('"It uses L2 regularisation."', answer)
    assert quote_in_answer("It uses ... stopping", answer)
    assert quote_in_answer('regularisation - and "early" stopping', answer)
    assert not quote_in_answer("It uses L1 regularisation", answer)
    assert not quote_in_answer("", answer)


def test_clean_follow_up() -> None:
    assert clean_follow_up('1. "Why does dropout help?"') == "Why does dropout help?"
    assert clean_follow_up('{"follow_up": "What is bias?"}') == "What is bias?"
    assert clean_follow_up("\n\n") is None


# The wording the judge may use for a point's verdict (the old 24-entry table, all still read).
VERDICT_WORDING = {
    "covered": "covered",
    "cover": "covered",
    "fully covered": "covered",
    "full": "covered",
    "yes": "covered",
    "met": "covered",
    "correct": "covered",
    "present": "covered",
    "partial": "partial",
    "partially covered": "partial",
    "partially": "partial",
    "partly": "partial",
    "partially met": "partial",
    "missing": "missing",
    "not covered": "missing",
    "absent": "missing",
    "no": "missing",
    "none": "missing",
    "not met": "missing",
    "not addressed": "missing",
    "wrong": "wrong",
    "incorrect": "wrong",
    "contradicted": "wrong",
    "inaccurate": "wrong",
}


@pytest.mark.parametrize(("wording", "expected"), sorted(VERDICT_WORDING.items()))
def test_verdict_wording(wording: str, expected: str) -> None:
    assert parse_verdict(wording) is Verdict(expected)
    assert parse_verdict(wording.upper().replace(" ", "_")) is Verdict(expected)
    assert parse_verdict(f"  {wording.title().replace(' ', '-')} ") is Verdict(expected)


@pytest.mark.parametrize("wording", ["maybe", "", "unclear", "covered-ish", None, 1, ["covered"]])
def test_unreadable_verdicts(wording: object) -> None:
    assert parse_verdict(wording) is None


def test_reply_model_reads_other_field_names() -> None:
    reply = JudgeReply.read(
        {
            "rationale": "because",
            "rubric_points": {
                "noise": {"evidence": "fits the noise", "explanation": "says so", "status": "Fully covered"},
                "remedy": "partly",
            },
            "overall_score": "8/10",
            "strengths": "clear",
            "weaknesses": ["...", "no early stopping"],
            "improvements": "Mention early stopping.",
            "followup": "What is early stopping?",
            "injection": "yes",
            "unknown_key": 1,
        }
    )
    assert reply.reasoning == "because" and reply.score == 4.0
    assert [(p.id, p.verdict, p.quote, p.reasoning) for p in reply.points] == [
        ("noise", Verdict.covered, "fits the noise", "says so"),
        ("remedy", Verdict.partial, "", ""),
    ]
    assert reply.strengths == ["clear"] and reply.gaps == ["no early stopping"]
    assert reply.improvement == "Mention early stopping." and reply.follow_up == "What is early stopping?"
    assert reply.injection_attempt is True


def test_reply_model_skips_what_is_not_a_point() -> None:
    reply = JudgeReply.read({"points": ["noise", 3, {"point_id": "noise", "coverage": "met"}], "score": None})
    assert [(p.id, p.verdict) for p in reply.points] == [("noise", Verdict.covered)] and reply.score is None
    assert JudgeReply.read({"points": "all of them"}).points == []


def test_strict_schema_comes_from_the_reply_model() -> None:
    block = reply_json_schema("judge_verdict")
    assert block["name"] == "judge_verdict" and block["strict"] is True
    schema = block["schema"]
    text = json.dumps(schema)
    assert "$ref" not in text and "$defs" not in text and '"title"' not in text and '"default"' not in text
    assert list(schema["properties"]) == list(JudgeReply.model_fields)
    props = list(schema["properties"])
    assert props.index("reasoning") < props.index("points") < props.index("score")  # reasoning first

    def objects(node: Any) -> list[dict[str, Any]]:
        found = []
        if isinstance(node, dict):
            if node.get("type") == "object":
                found.append(node)
            for value in node.values():
                found += objects(value)
        elif isinstance(node, list):
            for value in node:
                found += objects(value)
        return found

    closed = objects(schema)
    assert len(closed) == 2  # the reply and a point
    assert all(o["additionalProperties"] is False and o["required"] == list(o["properties"]) for o in closed)
    point = schema["properties"]["points"]["items"]
    assert list(point["properties"]) == ["id", "quote", "reasoning", "verdict"]
    assert point["properties"]["verdict"] == {"type": "string", "enum": VERDICT_VALUES}
    assert "unclear" not in VERDICT_VALUES
    assert schema["properties"]["score"] == {"type": "number"}


def test_parse_checks_the_reply_against_the_rubric() -> None:
    with pytest.raises(JudgeParseError, match="does not exist: 'made-up'"):
        parse(verdict_payload(points=[{"id": "made-up", "verdict": "covered"}]))
    with pytest.raises(JudgeParseError, match="outside 0-5"):
        parse(verdict_payload(score=99))
    with pytest.raises(JudgeParseError, match="no readable score"):
        parse({"score": "high", "points": [{"id": "noise", "verdict": "maybe"}]})
    with pytest.raises(JudgeParseError, match="no JSON object"):
        parse_judge_reply("a 4", rubric=make_input().rubric, answer=ANSWER, prompt_version="v3", model="m")


def test_score_from_points_when_the_reply_has_none() -> None:
    payload = verdict_payload(score="high")
    payload["points"][2]["verdict"] = "not sure"  # unreadable: dropped, counted missing
    verdict, report = parse(payload)
    assert report.score_from_points and report.dropped_ids == ["remedy"] and report.unassessed_ids == ["remedy"]
    assert [p.verdict for p in verdict.points] == [Verdict.covered, Verdict.covered, Verdict.missing]
    assert verdict.score == pytest.approx(3.3)


def test_follow_up_reply_field_names() -> None:
    assert clean_follow_up('{"question": "Why L2?"}') == "Why L2?"
    assert clean_follow_up('```json\n{"followup": ["Why", "L1?"]}\n```') == "Why L1?"


@pytest.mark.parametrize(
    ("question", "problem"),
    [
        ("How would you notice it while training, before you look at the test set?", None),
        ("What is it? And why does it happen?", "not exactly one question"),
        ("Tell me more about overfitting.", "not exactly one question"),
        ("Which pizza topping do you like best on a Friday night?", "not about the question's subject"),
        ("Would you agree that regularisation, more data or early stopping help?", "gives away the point 'remedy'"),
        ("So the model fits noise in the training set, right, and what else?", "copies the reference answer"),
        ("Why does overfitting happen " + "and why " * 30 + "?", "longer than 60 words"),
    ],
)
def test_a_written_follow_up_is_checked_before_it_is_asked(question: str, problem: str | None) -> None:
    inp = make_input()
    missed = [p for p in inp.rubric if p.id == "remedy"]
    found = follow_up_problem(question, inp, missed)
    assert (found is None) if problem is None else (found is not None and found.startswith(problem)), found
