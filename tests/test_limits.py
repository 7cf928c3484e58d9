"""Hostile input gets a 4xx with a clear message, never a 500, and bounded work
(app/limits.py, app/text.py, app/security.py and the schemas that use them)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.context import AppContext
from app.limits import GradeGate, TooManyRequests
from app.main import create_app
from app.security import RedactTokens, redact_path, redact_url

GRADE = {"question": "What is drift?", "reference_answer": "Inputs change versus training.", "answer": "Inputs shift."}


def start(client: TestClient, **body: Any) -> Any:
    return client.post("/api/sessions", json={"track": "mlops", "num_questions": 1, **body})


@pytest.mark.parametrize("size", [1_000_000, 10_000_000])
def test_a_huge_rubric_item_is_refused_at_once(client: TestClient, size: int) -> None:
    body = {**GRADE, "rubric": ["x" * size]}
    started = time.perf_counter()
    r = client.post("/api/grade", json=body)
    elapsed = time.perf_counter() - started
    assert r.status_code == 413 and "the limit is 262144 bytes" in r.json()["detail"]
    assert elapsed < 5  # refused before parsing (the benchmark-grade figure is in the issue note)


def test_every_field_of_the_grading_endpoint_is_bounded(client: TestClient) -> None:
    r = client.post("/api/grade", json={**GRADE, "rubric": ["x" * 600]})
    assert r.status_code == 422 and "rubric.0" in r.json()["detail"] and "500" in r.json()["detail"]
    r = client.post("/api/grade", json={**GRADE, "rubric": ["a point"] * 13})
    assert r.status_code == 422 and "12" in r.json()["detail"]
    r = client.post("/api/grade", json={**GRADE, "question": "q" * 4001})
    assert r.status_code == 422 and "4000" in r.json()["detail"]


def test_a_chunked_body_over_the_limit_is_refused(client: TestClient) -> None:
    def chunks() -> Any:
        for _ in range(40):
            yield b"x" * 10_000

    r = client.post("/api/grade", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"seed": 2**70}, "seed"),
        ({"seed": 2**31}, "seed"),
        ({"seed": -1}, "seed"),
        ({"num_questions": "3"}, "num_questions"),
        ({"num_questions": True}, "num_questions"),
        ({"candidate_name": "Ada\x00"}, "control characters"),
        ({"candidate_name": "Ada\ud800"}, "candidate_name"),
    ],
)
def test_bad_session_fields_are_422_not_500(client: TestClient, body: dict[str, Any], words: str) -> None:
    # Sent as JSON text with ASCII escapes, as a client would send a lone surrogate.
    raw = json.dumps({"track": "mlops", "num_questions": 1, **body})
    r = client.post("/api/sessions", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422 and words in r.json()["detail"], r.text


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("answer", "fine\ud800", "lone surrogate"),
        ("answer", "nul\x00", "control characters"),
        ("idempotency_key", "k\x00", "control characters"),
        ("turn_id", "t\x00", "control characters"),
    ],
)
def test_bad_answer_fields_are_422_not_500(client: TestClient, field: str, value: str, words: str) -> None:
    s = start(client).json()
    body = {"turn_id": s["question"]["turn_id"], "answer": "An answer.", field: value}
    r = client.post(
        f"/api/sessions/{s['session_id']}/answers",
        headers={"Authorization": f"Bearer {s['token']}", "content-type": "application/json"},
        content=json.dumps(body),
    )
    assert r.status_code == 422 and words in r.json()["detail"], r.text


def test_ids_that_cannot_exist_are_not_found(client: TestClient) -> None:
    assert client.get("/api/sessions/abc%00def", headers={"Authorization": "Bearer x"}).status_code == 404
    reviewer = {"Authorization": "Bearer reviewer-secret-token"}
    assert client.get("/api/review/turns/%00", headers=reviewer).status_code == 404


def test_reviewer_inputs(client: TestClient) -> None:
    non_ascii = {"Authorization": "Bearer caf\u00e9".encode()}
    assert client.get("/api/review/turns", headers=non_ascii).status_code == 403  # type: ignore[arg-type]
    reviewer = {"Authorization": "Bearer reviewer-secret-token"}
    r = client.get("/api/review/turns", headers=reviewer, params={"limit": -(10**9)})
    assert r.status_code == 422 and "limit" in r.json()["detail"]


def test_grading_is_rate_limited_and_capped_per_client() -> None:
    gate = GradeGate(per_minute=3, concurrent=2)
    gate.admit("a")
    gate.admit("a")
    with pytest.raises(TooManyRequests, match="busy"):
        gate.admit("b")  # two gradings run: the third waits its turn elsewhere
    gate.release()
    gate.admit("a")
    gate.release()
    with pytest.raises(TooManyRequests, match="3 gradings per minute") as info:
        gate.admit("a")
    assert 1 <= info.value.retry_after_s <= 61
    gate.admit("b")  # another client is not held back by the first


def test_the_grading_endpoint_answers_429_with_retry_after(ctx: AppContext) -> None:
    ctx.grade_gate = GradeGate(per_minute=1, concurrent=4)
    with TestClient(create_app(context=ctx)) as client:
        assert client.post("/api/grade", json=GRADE).status_code == 200
        r = client.post("/api/grade", json=GRADE)
    assert r.status_code == 429 and "per minute" in r.json()["detail"] and int(r.headers["retry-after"]) >= 1


def test_the_grading_endpoint_can_require_a_token(ctx: AppContext) -> None:
    from pydantic import SecretStr

    ctx.settings = ctx.settings.model_copy(update={"grade_api_token": SecretStr("grading-secret-token")})
    with TestClient(create_app(context=ctx)) as client:
        assert client.post("/api/grade", json=GRADE).status_code == 401
        ok = client.post("/api/grade", json=GRADE, headers={"Authorization": "Bearer grading-secret-token"})
    assert ok.status_code == 200


def test_secrets_stay_out_of_logs_and_the_audit() -> None:
    assert redact_path("/shared/abc123/export.pdf?x=1") == "/shared/<redacted>/export.pdf?x=1"
    assert redact_path("/sessions/1?token=s3cret&x=1") == "/sessions/1?token=<redacted>&x=1"
    assert redact_url("https://user:pw@llm.example:8443/v1") == "https://llm.example:8443/v1"
    assert redact_url("http://localhost:8080/v1") == "http://localhost:8080/v1"
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d', None, None)
    record.args = ("127.0.0.1:5", "GET", "/shared/tok3n", "1.1", 200)
    assert RedactTokens().filter(record) and "tok3n" not in record.getMessage()


def test_api_replies_carry_the_security_headers(client: TestClient) -> None:
    for path in ("/api/questions", "/healthz", "/api/sessions/nope"):
        r = client.get(path)
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
        assert r.headers["cache-control"] == "no-store" and "default-src 'none'" in r.headers["content-security-policy"]
    page = client.get("/")
    assert "default-src 'none'" not in page.headers["content-security-policy"]  # the page's own policy stands


def test_metrics_can_be_turned_off(ctx: AppContext) -> None:
    ctx.settings = ctx.settings.model_copy(update={"metrics": False})
    with TestClient(create_app(context=ctx)) as client:
        assert client.get("/metrics/").status_code == 404


def test_the_api_documents_the_errors_it_sends(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path, method in (("/api/grade", "post"), ("/api/sessions", "post"), ("/api/review/turns", "get")):
        responses = spec["paths"][path][method]["responses"]
        assert {"400", "413", "422", "429", "503"} <= set(responses), path
    invalid = spec["components"]["schemas"]["InvalidInputOut"]["properties"]
    assert invalid["detail"]["type"] == "string" and "errors" in invalid  # what the 422 handler sends


def test_the_api_says_where_a_token_is_optional(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    # Grading needs a token only when grade_api_token is set: the spec offers "no token" beside it.
    assert {} in spec["paths"]["/api/grade"]["post"]["security"]
    assert (
        client.post("/api/grade", json={"question": "q?", "reference_answer": "r.", "answer": "a"}).status_code == 200
    )
    # The reviewer's routes always need theirs.
    assert {} not in spec["paths"]["/api/review/turns"]["get"]["security"]


def test_docs_work_offline(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in page.text
    assert "cdn." not in page.text  # nothing fetched from a CDN
    asset = client.get("/docs-assets/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.content) > 100_000
