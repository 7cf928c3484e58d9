"""Spoken answers: a recording sent to the OpenAI-compatible transcription endpoint (respx mocks
it, so the real openai client runs), its text handed back for the answer box, every call audited."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.context import AppContext
from app.grading.models import LLMCall
from app.main import create_app
from tests.grading.llm_mock import BASE_URL

TRANSCRIBE = BASE_URL + "/audio/transcriptions"
AUDIO = b"\x1aE\xdf\xa3" + b"\x00" * 4000  # a (tiny) WebM file: what the page's MediaRecorder sends


@pytest.fixture
def voice(ctx: AppContext) -> Iterator[TestClient]:
    ctx.settings = ctx.settings.model_copy(
        update={"transcription_model": "whisper-test", "openai_base_url": BASE_URL, "max_audio_bytes": 65_536}
    )
    with TestClient(create_app(context=ctx)) as client:
        yield client


def started(client: TestClient) -> tuple[str, dict[str, str], str]:
    r = client.post("/api/sessions", json={"track": "mlops", "num_questions": 1, "seed": 3})
    assert r.status_code == 201, r.text
    s = r.json()
    return s["session_id"], {"Authorization": f"Bearer {s['token']}"}, s["question"]["turn_id"]


def send(client: TestClient, sid: str, auth: dict[str, str], data: bytes = AUDIO, kind: str = "audio/webm") -> Any:
    files = {"audio": ("answer.webm", data, kind)}
    return client.post(f"/api/sessions/{sid}/transcriptions", headers=auth, files=files)


@respx.mock
def test_a_recording_comes_back_as_text_and_the_call_is_audited(voice: TestClient, db: Session) -> None:
    route = respx.post(TRANSCRIBE).mock(
        return_value=httpx.Response(200, json={"text": " A canary sends a small share   of traffic first. "})
    )
    sid, auth, turn_id = started(voice)
    r = send(voice, sid, auth)
    assert r.status_code == 200, r.text
    assert r.json() == {"text": "A canary sends a small share of traffic first."}
    sent = route.calls.last.request
    assert sent.headers["content-type"].startswith("multipart/form-data")
    assert b'name="model"' in sent.content and b"whisper-test" in sent.content and AUDIO[:4] in sent.content
    call = db.scalars(select(LLMCall).where(LLMCall.purpose == "transcription")).one()
    assert call.outcome == "ok" and call.turn_id == turn_id and call.model == "whisper-test"
    assert call.request["bytes"] == len(AUDIO) and "file" in call.request  # the audio itself is not kept
    # Nothing was answered: the text is for the candidate to check and submit.
    assert voice.get(f"/api/sessions/{sid}", headers=auth).json()["turns"][0]["status"] == "asked"


@respx.mock
def test_bad_recordings_and_a_failing_service_get_clear_errors(voice: TestClient, db: Session) -> None:
    respx.post(TRANSCRIBE).mock(return_value=httpx.Response(500, json={"error": {"message": "boom"}}))
    sid, auth, _ = started(voice)
    wrong = send(voice, sid, auth, kind="text/plain")
    assert wrong.status_code == 415 and "audio/webm" in wrong.json()["detail"]
    big = send(voice, sid, auth, data=AUDIO * 20)
    assert big.status_code == 413 and "max_audio_bytes" in big.json()["detail"]
    empty = send(voice, sid, auth, data=b"")
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]
    failed = send(voice, sid, auth)
    assert failed.status_code == 502 and "type the answer instead" in failed.json()["detail"]
    assert db.scalars(select(LLMCall.outcome).where(LLMCall.purpose == "transcription")).all() == ["http_error"]


def test_without_a_transcription_model_it_says_how_to_turn_it_on(client: TestClient) -> None:
    sid, auth, _ = started(client)
    r = send(client, sid, auth)
    assert r.status_code == 404 and "MOCKINTERVIEW_TRANSCRIPTION_MODEL" in r.json()["detail"]
    page = client.get(f"/sessions/{sid}", headers=auth)
    assert 'id="dictate-btn"' in page.text and 'id="record-btn"' not in page.text
