"""A read-only or vanished SQLite database: requests that need it get a 503 saying why, nothing
saved is lost, and the process serves on (health, reads where the file still answers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.bank.loader import Bank
from app.config import Settings
from app.context import AppContext
from app.db.base import make_engine, make_sessionmaker
from app.db.migrate import upgrade
from app.grading.service import Grader
from app.main import create_app

START = {"track": "mlops", "num_questions": 2, "seed": 3}


def _client(settings: Settings, url: str, bank: Bank, grader: Grader) -> TestClient:
    engine = make_engine(url)
    ctx = AppContext(settings.model_copy(update={"database_url": url}), engine, make_sessionmaker(engine), bank, grader)
    ctx.loaded.set()
    return TestClient(create_app(context=ctx))


Started = tuple[Path, dict[str, Any]]


@pytest.fixture
def started(tmp_path: Path, test_settings: Settings, bank: Bank, grader: Grader) -> Iterator[Started]:
    path = tmp_path / "live.db"
    upgrade(f"sqlite:///{path}")
    with _client(test_settings, f"sqlite:///{path}", bank, grader) as client:
        started = client.post("/api/sessions", json=START).json()
    yield path, started


def test_a_read_only_database_gives_503_and_keeps_what_was_saved(
    started: Started, test_settings: Settings, bank: Bank, grader: Grader
) -> None:
    path, session = started
    auth = {"Authorization": f"Bearer {session['token']}"}
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
    with _client(test_settings, read_only, bank, grader) as client:
        assert client.get("/healthz").status_code == 200
        answer = {"turn_id": session["question"]["turn_id"], "answer": "Canary releases go to a few users first."}
        r = client.post(f"/api/sessions/{session['session_id']}/answers", json=answer, headers=auth)
        detail = r.json()["detail"]
        assert r.status_code == 503 and "read-only" in detail and "nothing was changed" in detail
        assert int(r.headers["Retry-After"]) > 0
        r = client.post("/api/sessions", json=START)
        assert r.status_code == 503
        assert client.get(f"/api/sessions/{session['session_id']}", headers=auth).status_code == 200  # reads still work
        assert client.get("/healthz").status_code == 200
    with _client(test_settings, f"sqlite:///{path}", bank, grader) as client:  # writable again: nothing was lost
        view = client.get(f"/api/sessions/{session['session_id']}", headers=auth).json()
        assert view["status"] == "active"


def test_a_vanished_database_gives_503(started: Started, test_settings: Settings, bank: Bank, grader: Grader) -> None:
    path, session = started
    auth = {"Authorization": f"Bearer {session['token']}"}
    with _client(test_settings, f"sqlite:///{path}", bank, grader) as client:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        r = client.get(f"/api/sessions/{session['session_id']}", headers=auth)
        assert r.status_code == 503 and "missing its tables" in r.json()["detail"]
        assert client.get("/healthz").status_code == 200


def test_a_page_on_a_read_only_database_is_a_503_page(
    started: Started, test_settings: Settings, bank: Bank, grader: Grader
) -> None:
    path, _ = started
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
    with _client(test_settings, read_only, bank, grader) as client:
        page = client.get("/")
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        r = client.post("/sessions", data={"csrf_token": token, "track": "mlops", "num_questions": "2"})
        assert r.status_code == 503 and "text/html" in r.headers["content-type"] and "read-only" in r.text
