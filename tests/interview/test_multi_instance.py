"""A session begun through one app instance is finished through another (separate engines)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, select

from app.bank.loader import Bank
from app.config import Settings
from app.context import AppContext
from app.db.base import make_engine, make_sessionmaker
from app.grading.service import Grader
from app.interview.models import Candidate, InterviewSession, Turn
from app.main import create_app


@pytest.fixture
def instances(
    db_engine: Engine, test_settings: Settings, bank: Bank, grader: Grader
) -> Iterator[tuple[TestClient, TestClient]]:
    """Two apps, each with its own engine and pool, over the same (committed) database."""
    url = db_engine.url.render_as_string(hide_password=False)
    engines = [make_engine(url), make_engine(url)]
    clients = []
    for engine in engines:
        ctx = AppContext(test_settings, engine, make_sessionmaker(engine), bank, grader)
        ctx.loaded.set()
        clients.append(TestClient(create_app(context=ctx)))
    yield clients[0], clients[1]
    # This test commits for real: remove what it made.
    with make_sessionmaker(engines[0])() as db:
        ids = [
            s.id
            for s in db.scalars(
                select(InterviewSession).where(InterviewSession.track == "mlops", InterviewSession.seed == 424242)
            )
        ]
        cands = [s.candidate_id for s in db.scalars(select(InterviewSession).where(InterviewSession.id.in_(ids)))]
        db.execute(delete(Turn).where(Turn.session_id.in_(ids)).where(Turn.parent_turn_id.is_not(None)))
        db.execute(delete(Turn).where(Turn.session_id.in_(ids)))
        db.execute(delete(InterviewSession).where(InterviewSession.id.in_(ids)))
        db.execute(delete(Candidate).where(Candidate.id.in_(cands)))
        db.commit()
    for engine in engines:
        engine.dispose()


def test_session_moves_between_processes(instances: tuple[TestClient, TestClient], bank: Bank) -> None:
    a, b = instances
    r = a.post("/api/sessions", json={"track": "mlops", "num_questions": 2, "seed": 424242, "difficulty": "easy"})
    assert r.status_code == 201
    s = r.json()
    headers = {"Authorization": f"Bearer {s['token']}"}
    q = s["question"]
    answer = bank.questions[q["question_id"]].reference_answer
    r = b.post(
        f"/api/sessions/{s['session_id']}/answers", headers=headers, json={"turn_id": q["turn_id"], "answer": answer}
    )
    assert r.status_code == 200, r.text
    nxt = r.json()["next_question"]
    # The other process sees the same current question...
    assert (
        a.get(f"/api/sessions/{s['session_id']}", headers=headers).json()["current_question"]["turn_id"]
        == nxt["turn_id"]
    )
    # ... and finishes the session the first one began.
    assert a.post(f"/api/sessions/{s['session_id']}/finish", headers=headers).status_code == 200
    report = b.get(f"/api/sessions/{s['session_id']}/report", headers=headers).json()
    assert report["questions_answered"] >= 1 and report["transcript"][0]["answer"] == answer
