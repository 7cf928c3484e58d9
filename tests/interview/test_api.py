"""The interview over HTTP, end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.bank.loader import Bank
from app.interview.models import Turn

START = {"track": "mlops", "topics": ["deployment"], "difficulty": "medium", "num_questions": 2, "seed": 7}


def start(client: TestClient, **overrides: Any) -> dict[str, Any]:
    r = client.post("/api/sessions", json=START | overrides)
    assert r.status_code == 201, r.text
    return r.json()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def partial_answer(bank: Bank, question_id: str) -> str:
    """An answer that makes only the first rubric point, so the others are missed."""
    q = bank.questions[question_id]
    return q.rubric[0].point


def full_answer(bank: Bank, question_id: str) -> str:
    return bank.questions[question_id].reference_answer


def test_practice_interview_with_follow_up_skip_and_report(client: TestClient, bank: Bank, db: Session) -> None:
    s = start(client, mode="practice")
    sid, token, q1 = s["session_id"], s["token"], s["question"]
    assert {"turn_id", "text"} <= q1.keys() and q1["is_follow_up"] is False and q1["number"] == 1

    r = client.post(
        f"/api/sessions/{sid}/answers",
        headers=auth(token),
        json={"turn_id": q1["turn_id"], "answer": partial_answer(bank, q1["question_id"])},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    grading = body["grading"]
    assert 0 <= grading["score"] <= 5 and grading["status"] == "embedding_only"
    assert "no LLM judge" in grading["status_message"]
    assert any(p["verdict"] in ("missing", "wrong", "unclear") for p in grading["points"]), grading["points"]
    follow = body["next_question"]
    assert follow["is_follow_up"] is True and follow["parent_turn_id"] == q1["turn_id"]

    # The follow-up's hints: as many as it says it has, each a bank hint, never a rubric point.
    question = bank.questions[q1["question_id"]]
    served = []
    for left in range(follow["hints_available"], 0, -1):
        h = client.post(f"/api/sessions/{sid}/hint", headers=auth(token), json={"turn_id": follow["turn_id"]})
        assert h.status_code == 200 and h.json()["hints_left"] == left - 1, h.text
        served.append(h.json()["hint"])
    assert served == list(question.hints) and not set(served) & {p.point for p in question.rubric}
    h = client.post(f"/api/sessions/{sid}/hint", headers=auth(token), json={"turn_id": follow["turn_id"]})
    assert h.status_code == 409
    # Then skip the follow-up: the next main question comes.
    r = client.post(f"/api/sessions/{sid}/skip", headers=auth(token), json={"turn_id": follow["turn_id"]})
    assert r.status_code == 200, r.text
    q2 = r.json()["next_question"]
    assert q2["is_follow_up"] is False and q2["number"] == 2 and q2["question_id"] != q1["question_id"]

    hint = client.post(f"/api/sessions/{sid}/hint", headers=auth(token), json={"turn_id": q2["turn_id"]})
    assert hint.status_code == 200 and hint.json()["hint"] == bank.questions[q2["question_id"]].hints[0]

    r = client.post(
        f"/api/sessions/{sid}/answers",
        headers=auth(token),
        json={"turn_id": q2["turn_id"], "answer": full_answer(bank, q2["question_id"])},
    )
    assert r.status_code == 200
    assert r.json()["grading"]["score"] >= 3.0

    r = client.post(f"/api/sessions/{sid}/finish", headers=auth(token))
    assert r.status_code == 200
    report = client.get(f"/api/sessions/{sid}/report", headers=auth(token)).json()
    assert report["questions_answered"] == 2 and report["overall_score"] is not None
    assert set(report["topic_scores"]) == {"deployment"}
    assert len(report["transcript"]) >= 3 and report["gaps"]

    state = client.get(f"/api/sessions/{sid}", headers=auth(token)).json()
    assert state["status"] == "finished" and state["current_question"] is None
    statuses = [t["status"] for t in state["turns"]]
    assert statuses.count("skipped") >= 1 and statuses.count("answered") >= 2
    # Every turn records what was actually asked, with the bank content hash.
    turns = db.scalars(select(Turn).where(Turn.session_id == sid)).all()
    assert all(t.bank_hash == bank.questions[t.question_id].content_hash for t in turns)


def test_interview_mode_keeps_feedback_for_the_report(client: TestClient, bank: Bank) -> None:
    s = start(client, mode="interview", num_questions=1)
    sid, token, q = s["session_id"], s["token"], s["question"]
    r = client.post(
        f"/api/sessions/{sid}/answers",
        headers=auth(token),
        json={"turn_id": q["turn_id"], "answer": full_answer(bank, q["question_id"])},
    )
    assert r.status_code == 200
    assert r.json()["grading"] is None
    assert client.get(f"/api/sessions/{sid}", headers=auth(token)).json()["turns"][0]["score"] is None
    # Answer any follow-ups with "I don't know" until the session ends.
    nxt = r.json()["next_question"]
    while nxt is not None:
        nxt = client.post(
            f"/api/sessions/{sid}/dont-know", headers=auth(token), json={"turn_id": nxt["turn_id"]}
        ).json()["next_question"]
    report = client.get(f"/api/sessions/{sid}/report", headers=auth(token)).json()
    assert report["overall_score"] is not None and report["transcript"][0]["grading"]["score"] is not None
    state = client.get(f"/api/sessions/{sid}", headers=auth(token)).json()
    assert state["turns"][0]["score"] is not None  # feedback shows once finished


def test_dont_know_scores_zero_and_moves_on(client: TestClient) -> None:
    s = start(client, num_questions=2)
    r = client.post(
        f"/api/sessions/{s['session_id']}/dont-know",
        headers=auth(s["token"]),
        json={"turn_id": s["question"]["turn_id"]},
    )
    assert r.status_code == 200
    assert r.json()["grading"]["score"] == 0.0
    assert r.json()["next_question"]["is_follow_up"] is False


def test_the_report_counts_skips_and_dont_knows_apart(client: TestClient, bank: Bank) -> None:
    s = start(client, num_questions=3)
    sid, token, q = s["session_id"], s["token"], s["question"]
    r = client.post(f"/api/sessions/{sid}/dont-know", headers=auth(token), json={"turn_id": q["turn_id"]})
    q = r.json()["next_question"]
    r = client.post(f"/api/sessions/{sid}/skip", headers=auth(token), json={"turn_id": q["turn_id"]})
    q = r.json()["next_question"]
    answer = {"turn_id": q["turn_id"], "answer": full_answer(bank, q["question_id"])}
    r = client.post(f"/api/sessions/{sid}/answers", headers=auth(token), json=answer)
    while r.json().get("next_question"):  # follow-ups, if any: skip them
        nxt = r.json()["next_question"]
        r = client.post(f"/api/sessions/{sid}/skip", headers=auth(token), json={"turn_id": nxt["turn_id"]})
    client.post(f"/api/sessions/{sid}/finish", headers=auth(token))
    report = client.get(f"/api/sessions/{sid}/report", headers=auth(token)).json()
    assert report["questions_answered"] == 1 and report["questions_skipped"] == 1
    assert report["questions_dont_know"] == 1 and report["questions_scored"] == 3
    assert report["answered_summary"] == '1 of 3 (1 skipped, 1 "I don\'t know", counted as 0)'


def test_same_answer_twice_creates_one_turn(client: TestClient, db: Session, bank: Bank) -> None:
    s = start(client)
    sid, token, q = s["session_id"], s["token"], s["question"]
    payload = {"turn_id": q["turn_id"], "answer": full_answer(bank, q["question_id"])}
    first = client.post(f"/api/sessions/{sid}/answers", headers=auth(token), json=payload)
    second = client.post(f"/api/sessions/{sid}/answers", headers=auth(token), json=payload)
    assert first.status_code == second.status_code == 200
    assert second.json()["replay"] is True and "already recorded" in second.json()["message"]
    assert second.json()["grading"]["score"] == first.json()["grading"]["score"]
    assert second.json()["next_question"] == first.json()["next_question"]
    turns = db.scalars(select(Turn).where(Turn.session_id == sid)).all()
    assert len(turns) == 2  # the answered question and the one asked next
    different = client.post(f"/api/sessions/{sid}/answers", headers=auth(token), json=payload | {"answer": "other"})
    assert different.status_code == 409


@pytest.mark.parametrize(
    ("answer", "status", "message"),
    [
        ("", 422, "empty"),
        ("   \n\t ", 422, "empty"),
        ("x" * 8001, 422, "limit is 8000"),
        ("bad \x00 byte", 422, "control characters"),
        ("bell \x07", 422, "control characters"),
    ],
)
def test_bad_answers_are_refused_and_nothing_is_lost(
    client: TestClient, db: Session, answer: str, status: int, message: str
) -> None:
    s = start(client)
    sid, token, q = s["session_id"], s["token"], s["question"]
    r = client.post(
        f"/api/sessions/{sid}/answers", headers=auth(token), json={"turn_id": q["turn_id"], "answer": answer}
    )
    assert r.status_code == status and message in r.json()["detail"]
    turn = db.get(Turn, q["turn_id"])
    assert turn is not None and turn.status == "asked" and turn.answer_text is None
    # The session goes on as if nothing happened.
    ok = client.post(
        f"/api/sessions/{sid}/answers",
        headers=auth(token),
        json={"turn_id": q["turn_id"], "answer": "A canary release"},
    )
    assert ok.status_code == 200


def test_ids_tokens_and_json_errors(client: TestClient) -> None:
    s = start(client)
    sid, token, q = s["session_id"], s["token"], s["question"]
    url = f"/api/sessions/{sid}/answers"
    assert client.post(url, json={"turn_id": q["turn_id"], "answer": "a"}).status_code == 401
    wrong = client.post(url, headers=auth("not-the-token"), json={"turn_id": q["turn_id"], "answer": "a"})
    unknown = client.post(
        "/api/sessions/doesnotexist/answers", headers=auth(token), json={"turn_id": q["turn_id"], "answer": "a"}
    )
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.json() == unknown.json() == {"detail": "session not found"}  # reveals nothing
    r = client.post(url, headers=auth(token), json={"turn_id": "nope", "answer": "a"})
    assert r.status_code == 404 and "not part of this session" in r.json()["detail"]
    r = client.post(url, headers=auth(token) | {"Content-Type": "application/json"}, content=b'{"turn_id": ')
    assert r.status_code == 422 and "not valid JSON" in r.json()["detail"]
    r = client.post(url, headers=auth(token), json={"answer": "a"})
    assert r.status_code == 422 and "turn_id" in r.json()["detail"]
    assert client.post("/api/sessions", json=START | {"track": "cooking"}).status_code == 422
    r = client.post("/api/sessions", json=START | {"topics": ["astrology"]})
    assert r.status_code == 422 and "astrology" in r.json()["detail"]
    assert client.post("/api/sessions", json=START | {"num_questions": 0}).status_code == 422


def test_answering_a_turn_that_is_not_current(client: TestClient, bank: Bank) -> None:
    s = start(client, num_questions=2)
    sid, token, q1 = s["session_id"], s["token"], s["question"]
    r = client.post(f"/api/sessions/{sid}/skip", headers=auth(token), json={"turn_id": q1["turn_id"]})
    assert r.status_code == 200
    again = client.post(f"/api/sessions/{sid}/skip", headers=auth(token), json={"turn_id": q1["turn_id"]})
    assert again.status_code == 409 and "not the current question" in again.json()["detail"]
    late = client.post(
        f"/api/sessions/{sid}/answers", headers=auth(token), json={"turn_id": q1["turn_id"], "answer": "late answer"}
    )
    assert late.status_code == 409


def test_report_before_finish_is_a_clear_conflict(client: TestClient) -> None:
    s = start(client)
    r = client.get(f"/api/sessions/{s['session_id']}/report", headers=auth(s["token"]))
    assert r.status_code == 409 and "finished" in r.json()["detail"]


def test_answer_kept_as_ungraded_when_grading_raises(
    client: TestClient, ctx: Any, db: Session, bank: Bank, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: Any) -> Any:
        raise RuntimeError("model exploded")

    s = start(client, num_questions=2)
    sid, token, q = s["session_id"], s["token"], s["question"]
    monkeypatch.setattr(ctx.grader, "grade", broken)
    monkeypatch.setattr(ctx.grader, "grade_within", broken)
    answer = full_answer(bank, q["question_id"])
    r = client.post(
        f"/api/sessions/{sid}/answers", headers=auth(token), json={"turn_id": q["turn_id"], "answer": answer}
    )
    assert r.status_code == 200
    assert r.json()["grading_status"] == "ungraded" and r.json()["grading"] is None
    assert "saved" in r.json()["message"]
    assert r.json()["next_question"] is not None  # the interview goes on
    turn = db.get(Turn, q["turn_id"])
    assert turn is not None and turn.answer_text == answer and turn.grading_status == "ungraded"
    assert "model exploded" in (turn.grading_error or "")

    monkeypatch.undo()
    r = client.post(f"/api/review/turns/{q['turn_id']}/regrade", headers=auth("reviewer-secret-token"))
    assert r.status_code == 200 and r.json()["score"] is not None
    db.expire_all()
    assert db.get(Turn, q["turn_id"]).grading_status == "embedding_only"  # type: ignore[union-attr]


def test_questions_and_health(client: TestClient) -> None:
    qs = client.get("/api/questions", params={"track": "mlops", "topic": "deployment"}).json()
    assert qs and all(q["topic"] == "deployment" for q in qs)
    assert "reference_answer" not in qs[0]
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["grader"] == "embedding"
    assert "/api/sessions" in client.get("/openapi.json").json()["paths"]


def test_metrics_count_gradings(client: TestClient, bank: Bank) -> None:
    s = start(client, num_questions=1)
    client.post(
        f"/api/sessions/{s['session_id']}/dont-know",
        headers=auth(s["token"]),
        json={"turn_id": s["question"]["turn_id"]},
    )
    text = client.get("/metrics/").text
    assert 'mockinterview_gradings_total{mode="embedding",status="graded"}' in text
    assert "mockinterview_grading_seconds_bucket" in text


def test_the_commit_comes_before_the_reply(client: TestClient, ctx: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reply never announces work whose commit failed: the request's database dependency
    commits before the response is sent, and a failed commit is an error, not a 200."""
    s = start(client)
    sid, token, q = s["session_id"], s["token"], s["question"]
    real = ctx.session_factory

    def failing_commit_sessions() -> Session:
        """Sessions whose commit works once (the authentication's read) and then fails."""
        db = real()
        commit, calls = db.commit, []

        def fail_after_the_first() -> None:
            calls.append(1)
            if len(calls) > 1:
                raise RuntimeError("disk full")
            commit()

        monkeypatch.setattr(db, "commit", fail_after_the_first)
        return db

    monkeypatch.setattr(ctx, "session_factory", failing_commit_sessions)
    with TestClient(client.app, raise_server_exceptions=False) as failing:
        r = failing.post(f"/api/sessions/{sid}/skip", headers=auth(token), json={"turn_id": q["turn_id"]})
    assert r.status_code == 500
    monkeypatch.setattr(ctx, "session_factory", real)
    current = client.get(f"/api/sessions/{sid}", headers=auth(token)).json()["current_question"]
    assert current["turn_id"] == q["turn_id"]  # the skip was not kept, and nobody was told it was


def test_an_answer_says_where_its_time_went(client: TestClient, bank: Bank) -> None:
    s = start(client)
    q = s["question"]
    r = client.post(
        f"/api/sessions/{s['session_id']}/answers",
        headers=auth(s["token"]),
        json={"turn_id": q["turn_id"], "answer": full_answer(bank, q["question_id"])},
    )
    steps = dict(part.strip().split(";dur=") for part in r.headers["server-timing"].split(","))
    assert set(steps) == {"record", "grade", "settle"} and all(float(v) >= 0 for v in steps.values())


def test_a_difficulty_the_bank_cannot_give_is_announced(client: TestClient, bank: Bank) -> None:
    """A session for hard questions in one topic gets every hard one first, then says why the
    next is easier, instead of silently serving another level."""
    hard: dict[str, int] = {}
    for q in bank.for_track("mlops"):
        hard[q.topic] = hard.get(q.topic, 0) + (q.difficulty.value == "hard")
    topic = min((t for t in hard if hard[t]), key=lambda t: hard[t])
    s = start(client, topics=[topic], difficulty="hard", num_questions=hard[topic] + 1)
    sid, token, q = s["session_id"], s["token"], s["question"]
    seen = []
    while True:
        if not q["is_follow_up"]:
            seen.append((q["difficulty"], q["difficulty_note"]))
            if len(seen) == hard[topic] + 1:
                break
        r = client.post(f"/api/sessions/{sid}/skip", headers=auth(token), json={"turn_id": q["turn_id"]})
        assert r.status_code == 200, r.text
        q = r.json()["next_question"]
    assert seen[:-1] == [("hard", None)] * hard[topic]
    level, note = seen[-1]
    assert level != "hard" and note == f"No hard question is left in the chosen topics, so this one is {level}."


def test_the_candidate_token_is_documented_and_bounded(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    params = spec["paths"]["/api/sessions"]["post"]["parameters"]
    header = next(p for p in params if p["name"] == "x-candidate-token")
    assert "weakest topics" in header["description"]
    first = start(client)
    again = client.post("/api/sessions", json=START, headers={"X-Candidate-Token": first["candidate_token"]})
    assert again.status_code == 201 and again.json()["candidate_token"] == first["candidate_token"]
    long = client.post("/api/sessions", json=START, headers={"X-Candidate-Token": "x" * 201})
    assert long.status_code == 422 and "x-candidate-token" in long.text.lower()


def test_an_off_topic_answer_gets_no_follow_up(client: TestClient) -> None:
    s = start(client, mode="practice")
    sid, token, q1 = s["session_id"], s["token"], s["question"]
    pizza = "My favourite pizza has mozzarella, basil and tomatoes, baked quickly in a wood oven."
    r = client.post(
        f"/api/sessions/{sid}/answers", headers=auth(token), json={"turn_id": q1["turn_id"], "answer": pizza}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert "off_topic" in body["grading"]["flags"] and "something else" in body["grading"]["status_message"]
    assert body["next_question"]["is_follow_up"] is False and body["next_question"]["number"] == 2
