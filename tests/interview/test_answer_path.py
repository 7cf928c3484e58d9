"""The answer path under real concurrency and faults, against a live server (uvicorn on
loopback, a real committed database), on SQLite and PostgreSQL.

Each test is bounded in requests and in time; none asserts a latency (the benchmark
``bench/bench_answer_path.py`` measures those).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from app.bank.loader import Bank
from app.config import Settings
from app.context import AppContext
from app.db import instances
from app.db.base import begin_write, utcnow
from app.db.instances import AppInstance
from app.grading.audit import DatabaseAudit
from app.grading.judge import Judge
from app.grading.models import LLMCall
from app.grading.service import Grader
from app.interview.models import InterviewSession, Turn
from app.interview.sweeper import Sweeper
from tests.conftest import PG_SKIP, PG_URL
from tests.grading.llm_mock import BASE_URL, CHAT, completion, request_json, verdict_payload
from tests.live import context_for, fresh_database, serve

pytestmark = pytest.mark.anyio


@dataclass
class Live:
    url: str
    ctx: AppContext
    engine: Engine
    judge_api: respx.Router | None = None
    """The mocked LLM endpoint, for servers with a judge."""

    def db(self) -> Session:
        return self.ctx.session_factory()


def _settings(base: Settings, **extra: Any) -> Settings:
    return base.model_copy(update={"sweep_interval_s": 0.2, **extra})


@pytest.fixture(params=["sqlite", "postgresql"])
def db_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql" and not PG_URL:
        pytest.skip(PG_SKIP)
    return str(request.param)


@contextlib.contextmanager
def _live(db_kind: str, tmp_path: Path, settings: Settings, bank: Bank, grader: Grader) -> Iterator[Live]:
    with fresh_database(db_kind, tmp_path, PG_URL) as url:
        ctx, engine = context_for(url, settings, bank, grader)
        with serve(ctx) as base:
            yield Live(base, ctx, engine)
        engine.dispose()


@pytest.fixture
def live(db_kind: str, tmp_path: Path, test_settings: Settings, bank: Bank, grader: Grader) -> Iterator[Live]:
    with _live(db_kind, tmp_path, _settings(test_settings), bank, grader) as server:
        yield server


@pytest.fixture
def live_unswept(db_kind: str, tmp_path: Path, test_settings: Settings, bank: Bank, grader: Grader) -> Iterator[Live]:
    """A live server without a sweeper: only requests can move a session on."""
    with _live(db_kind, tmp_path, _settings(test_settings, sweep_interval_s=0), bank, grader) as server:
        yield server


def answer_of(bank: Bank, question: dict[str, Any]) -> str:
    return bank.questions[question["question_id"]].reference_answer


async def start(client: httpx.AsyncClient, seed: int, **extra: Any) -> dict[str, Any]:
    body = {"track": "mlops", "num_questions": 3, "seed": seed, "difficulty": "easy", **extra}
    r = await client.post("/api/sessions", json=body)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


def bearer(s: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {s['token']}"}


def turns_of(live: Live, session_id: str) -> list[Turn]:
    with live.db() as db:
        return list(db.scalars(select(Turn).where(Turn.session_id == session_id).order_by(Turn.position)))


# --------------------------------------------------------------------------- concurrency
async def test_many_candidates_answer_at_once_without_errors(live: Live, bank: Bank) -> None:
    async with httpx.AsyncClient(base_url=live.url, timeout=120) as client:
        sessions = await asyncio.gather(*(start(client, seed=100 + i) for i in range(16)))

        async def candidate(s: dict[str, Any]) -> list[int]:
            codes, q = [], s["question"]
            for _ in range(3):
                r = await client.post(
                    f"/api/sessions/{s['session_id']}/answers",
                    headers=bearer(s),
                    json={"turn_id": q["turn_id"], "answer": answer_of(bank, q)},
                )
                codes.append(r.status_code)
                q = r.json().get("next_question")
                if q is None:
                    break
            return codes

        results = await asyncio.gather(*(candidate(s) for s in sessions))
    assert all(code == 200 for codes in results for code in codes), results
    posted = sum(len(codes) for codes in results)
    with live.db() as db:
        ids = [s["session_id"] for s in sessions]
        answered = db.scalar(
            select(func.count()).select_from(Turn).where(Turn.session_id.in_(ids), Turn.status == "answered")
        )
        assert answered == posted  # nothing lost, nothing doubled
        for sid in ids:
            session = db.get(InterviewSession, sid)
            assert session is not None
            waiting = [t for t in session.turns if t.status == "asked"]
            assert session.status == "finished" or len(waiting) == 1  # never stuck
            assert all(t.grading_status != "ungraded" for t in session.turns)


async def test_a_storm_of_identical_submits_gives_one_turn_and_one_reply(live: Live, bank: Bank) -> None:
    async with (
        httpx.AsyncClient(base_url=live.url, timeout=120) as client,
        httpx.AsyncClient(base_url=live.url, timeout=30) as prober,
    ):
        s = await start(client, seed=7)
        q = s["question"]
        body = {"turn_id": q["turn_id"], "answer": answer_of(bank, q)}
        storm_over = asyncio.Event()
        health: list[int] = []

        async def probe() -> None:
            while not storm_over.is_set():
                health.append((await prober.get("/healthz")).status_code)
                await asyncio.sleep(0.01)

        async def storm() -> list[httpx.Response]:
            try:
                return list(
                    await asyncio.gather(
                        *(
                            client.post(f"/api/sessions/{s['session_id']}/answers", headers=bearer(s), json=body)
                            for _ in range(50)
                        )
                    )
                )
            finally:
                storm_over.set()

        replies, _ = await asyncio.gather(storm(), probe())
    assert [r.status_code for r in replies] == [200] * 50, [r.text for r in replies if r.status_code != 200][:3]
    data = [r.json() for r in replies]
    assert sum(not d["replay"] for d in data) == 1
    assert len({d["next_question"]["turn_id"] for d in data}) == 1  # the same reply for all
    assert len({json.dumps(d["grading"], sort_keys=True) for d in data}) == 1
    turns = turns_of(live, s["session_id"])
    assert [t.status for t in turns] == ["answered", "asked"]
    assert health and set(health) == {200}  # the server kept answering throughout


async def test_different_answers_to_one_turn_give_one_winner_and_409s(live: Live, bank: Bank) -> None:
    async with httpx.AsyncClient(base_url=live.url, timeout=120) as client:
        s = await start(client, seed=8)
        q = s["question"]
        replies = await asyncio.gather(
            *(
                client.post(
                    f"/api/sessions/{s['session_id']}/answers",
                    headers=bearer(s),
                    json={"turn_id": q["turn_id"], "answer": f"{answer_of(bank, q)} (variant {i})"},
                )
                for i in range(10)
            )
        )
    codes = sorted(r.status_code for r in replies)
    assert codes == [200] + [409] * 9, [r.text for r in replies if r.status_code not in (200, 409)]
    assert all("already answered" in r.json()["detail"] for r in replies if r.status_code == 409)
    assert [t.status for t in turns_of(live, s["session_id"])][:2] == ["answered", "asked"]


async def test_skip_and_answer_racing_give_one_winner_and_a_409(live: Live, bank: Bank) -> None:
    async with httpx.AsyncClient(base_url=live.url, timeout=120) as client:
        for seed in range(20, 26):
            s = await start(client, seed=seed)
            q = s["question"]
            url = f"/api/sessions/{s['session_id']}"
            answered, skipped = await asyncio.gather(
                client.post(
                    f"{url}/answers", headers=bearer(s), json={"turn_id": q["turn_id"], "answer": answer_of(bank, q)}
                ),
                client.post(f"{url}/skip", headers=bearer(s), json={"turn_id": q["turn_id"]}),
            )
            assert sorted([answered.status_code, skipped.status_code]) == [200, 409], (answered.text, skipped.text)
            first = turns_of(live, s["session_id"])[0]
            assert first.status == ("answered" if answered.status_code == 200 else "skipped")


# ------------------------------------------------------------------------ crash and resume
def _leave_as_a_crash_would(live: Live, session_id: str, answer: str, owner: str) -> str:
    """The state a process killed while grading leaves: the answer kept, ungraded, claimed
    by that process, and no next question."""
    with live.db() as db:
        # A writer's transaction, like the app's own: the live server's sweeper writes meanwhile,
        # and on SQLite a deferred transaction that read first is refused the write lock.
        begin_write(db)
        turn = db.scalars(select(Turn).where(Turn.session_id == session_id, Turn.status == "asked")).one()
        turn.status, turn.answer_text, turn.grading_status = "answered", answer, "ungraded"
        turn.answered_at = turn.claimed_at = utcnow()
        turn.claimed_by = owner
        db.commit()
        return turn.id


async def test_the_next_request_resumes_a_session_its_dead_grader_left_stuck(live_unswept: Live, bank: Bank) -> None:
    live = live_unswept
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as client:
        s = await start(client, seed=31)
        url = f"/api/sessions/{s['session_id']}"
        # A live process (beating) still owns the answer: nobody takes it from it.
        with live.db() as db:
            begin_write(db)
            instances.register(db, "other-live-process", "server")
            db.commit()
        turn_id = _leave_as_a_crash_would(live, s["session_id"], answer_of(bank, s["question"]), "other-live-process")
        r = await client.get(url, headers=bearer(s))
        assert r.status_code == 200 and r.json()["current_question"] is None
        # It stops beating (killed): the next request grades the answer and asks the next question.
        with live.db() as db:
            begin_write(db)
            row = db.get(AppInstance, "other-live-process")
            assert row is not None
            row.heartbeat_at = utcnow() - timedelta(seconds=instances.DEAD_AFTER_S + 1)
            db.commit()
        r = await client.get(url, headers=bearer(s))
        assert r.status_code == 200
        current = r.json()["current_question"]
        assert current is not None and current["turn_id"] != turn_id
        first = turns_of(live, s["session_id"])[0]
        assert first.grading_status != "ungraded" and first.score is not None and first.claimed_by is None
        # The retry of that answer gets the same reply as any replay: the question asked next.
        r = await client.post(
            f"{url}/answers", headers=bearer(s), json={"turn_id": turn_id, "answer": answer_of(bank, s["question"])}
        )
        assert r.status_code == 200 and r.json()["replay"]
        assert r.json()["next_question"]["turn_id"] == current["turn_id"]


async def test_the_sweeper_grades_and_moves_on_without_any_request(live: Live, bank: Bank) -> None:
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as client:
        s = await start(client, seed=32)
    turn_id = _leave_as_a_crash_would(live, s["session_id"], answer_of(bank, s["question"]), "a-process-that-died")
    for _ in range(100):  # the sweeper runs every 0.2 s here
        turns = turns_of(live, s["session_id"])
        if len(turns) > 1:
            break
        await asyncio.sleep(0.1)
    first = next(t for t in turns if t.id == turn_id)
    assert first.grading_status == "embedding_only" and first.score is not None
    assert [t.status for t in turns][1:] == ["asked"]


# ------------------------------------------------------------------------------ the judge
def _verdict(score: float) -> httpx.Response:
    return completion(json.dumps(verdict_payload(score=score, points=[])))


async def answer_first(live: Live, bank: Bank, seed: int) -> tuple[dict[str, Any], httpx.Response]:
    """Start a session and answer its first question with the reference answer."""
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as client:
        s = await start(client, seed=seed)
        q = s["question"]
        r = await client.post(
            f"/api/sessions/{s['session_id']}/answers",
            headers=bearer(s),
            json={"turn_id": q["turn_id"], "answer": answer_of(bank, q)},
        )
    return s, r


@pytest.fixture
def judged(db_kind: str, tmp_path: Path, test_settings: Settings, bank: Bank, grader: Grader) -> Iterator[Live]:
    """A live server whose grader has an LLM judge (mocked by respx; requests to the server
    itself pass through)."""
    settings = _settings(
        test_settings,
        judge_model="judge-test",
        openai_base_url=BASE_URL,
        judge_cache=False,
        judge_deadline_s=1.5,
        judge_timeout_s=5.0,
        judge_max_retries=0,
        data_dir=tmp_path,
    )
    with fresh_database(db_kind, tmp_path, PG_URL) as url:
        ctx, engine = context_for(url, settings, bank, None)
        judge = Judge(settings, audit=DatabaseAudit(ctx.session_factory), retry_base_s=0.001)
        ctx.grader = Grader(settings, grader.embedding, judge, grader.batcher)
        with respx.mock(assert_all_called=False) as mock:
            mock.route(host="127.0.0.1").pass_through()
            with serve(ctx) as base:
                yield Live(base, ctx, engine, mock)
        engine.dispose()


async def test_a_slow_judge_holds_the_candidate_only_until_the_deadline(judged: Live, bank: Bank) -> None:
    async def slow(_: httpx.Request) -> httpx.Response:
        await asyncio.sleep(4.0)
        return _verdict(3.5)

    assert judged.judge_api is not None
    judged.judge_api.post(BASE_URL + CHAT).mock(side_effect=slow)
    s, r = await answer_first(judged, bank, seed=41)
    assert r.status_code == 200
    data = r.json()
    # The candidate got the embedding grading and the next question, without the judge...
    assert data["grading_status"] == "embedding_only" and data["next_question"] is not None
    assert "judge_pending" in data["grading"]["flags"]
    # ... whose verdict updates the turn when it arrives.
    for _ in range(100):
        first = turns_of(judged, s["session_id"])[0]
        if first.grading_status == "graded":
            break
        await asyncio.sleep(0.1)
    assert first.grading_status == "graded" and not first.judge_pending
    assert first.grading is not None and first.grading["judge_score"] == 3.5


async def test_the_sweeper_regrades_judge_failures_once_the_judge_is_back(judged: Live, bank: Bank) -> None:
    judge = judged.ctx.grader.judge  # type: ignore[union-attr]
    assert judge is not None
    judge.PROBE_AFTER_S = 0.5  # type: ignore[misc]
    assert judged.judge_api is not None
    route = judged.judge_api.post(BASE_URL + CHAT).mock(return_value=httpx.Response(503, json={"error": "down"}))
    s, r = await answer_first(judged, bank, seed=42)
    assert r.status_code == 200 and r.json()["grading_status"] == "embedding_only"
    first = turns_of(judged, s["session_id"])[0]
    assert first.judge_pending
    route.mock(return_value=_verdict(4.0))  # the judge is back
    for _ in range(100):
        first = turns_of(judged, s["session_id"])[0]
        if not first.judge_pending:
            break
        await asyncio.sleep(0.1)
    assert first.grading_status == "graded" and first.grading is not None and first.grading["judge_score"] == 4.0


async def test_sweepers_of_two_processes_share_the_work_without_doing_it_twice(
    db_kind: str, tmp_path: Path, test_settings: Settings, bank: Bank, grader: Grader
) -> None:
    settings = _settings(test_settings, sweep_interval_s=0)
    with fresh_database(db_kind, tmp_path, PG_URL) as url:
        one, e1 = context_for(url, settings, bank, grader)
        two, e2 = context_for(url, settings, bank, grader)
        with one.session_factory() as db:
            for ctx in (one, two):  # both processes are alive (beating)
                instances.register(db, ctx.runtime.instance_id, "server")
            started = [one.interviews.start(db, _start(seed)) for seed in range(50, 58)]
            db.commit()
            for st in started:
                answer = bank.questions[st.turn.question_id].reference_answer
                one.interviews.record_answer(db, st.session, st.turn.id, answer)
                db.commit()
            db.execute(Turn.__table__.update().values(claimed_by=None))
            db.commit()
        claims = await asyncio.gather(
            asyncio.to_thread(Sweeper(one.interviews).claim, 5), asyncio.to_thread(Sweeper(two.interviews).claim, 5)
        )
        assert not set(claims[0]) & set(claims[1])  # never the same turn twice
        assert len(claims[0]) + len(claims[1]) == 8
        counts = [await Sweeper(c.interviews).sweep_once() for c in (one, two)]
        assert sum(c.ungraded for c in counts) == 0  # already claimed above: nothing left to take
        for ctx, ids in ((one, claims[0]), (two, claims[1])):
            for turn_id in ids:
                assert await ctx.interviews.complete_claimed(turn_id) == ("ungraded", True)
        with one.session_factory() as db:
            assert db.scalar(select(func.count()).select_from(Turn).where(Turn.grading_status == "ungraded")) == 0
            assert db.scalar(select(func.count()).select_from(Turn).where(Turn.status == "asked")) == 8
        e1.dispose()
        e2.dispose()


def _start(seed: int) -> Any:
    from app.interview.schemas import SessionStart

    return SessionStart(track="mlops", num_questions=2, seed=seed, difficulty="easy")


async def test_the_reviewer_regrades_with_the_judge_on_a_live_server(judged: Live, bank: Bank) -> None:
    assert judged.judge_api is not None
    judged.judge_api.post(BASE_URL + CHAT).mock(return_value=_verdict(3.0))
    _, r = await answer_first(judged, bank, seed=43)
    assert r.status_code == 200
    turn_id = r.json()["turn_id"]
    reviewer = {"Authorization": "Bearer reviewer-secret-token"}  # tests/conftest.py's test_settings
    async with httpx.AsyncClient(base_url=judged.url, timeout=60) as client:
        for _ in range(3):
            regraded = await client.post(f"/api/review/turns/{turn_id}/regrade", headers=reviewer)
            assert regraded.status_code == 200, regraded.text
            assert regraded.json()["status"] == "graded"
        audit = (await client.get(f"/api/review/turns/{turn_id}", headers=reviewer)).json()
    assert len(audit["llm_calls"]) >= 4  # the answer's judging and the three regrades, all audited


# ------------------------------------------------------------------ follow-ups the judge writes
def _is_follow_up_request(request: httpx.Request) -> bool:
    return "follow-up question" in request_json(request)["messages"][0]["content"]


def _tag(request: httpx.Request, tag: str) -> str:
    user = request_json(request)["messages"][-1]["content"]
    match = re.search(rf"<{tag}>\n(.*?)\n</{tag}>", user, re.DOTALL)
    assert match, user
    return match.group(1).strip()


async def _answer_weakly(live: Live, bank: Bank) -> tuple[dict[str, Any], dict[str, Any]]:
    """Start a session and answer its first question with one vague sentence (points missed)."""
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as client:
        s = await start(client, seed=43)
        q = s["question"]
        words = bank.questions[q["question_id"]].question.split()[:6]
        r = await client.post(
            f"/api/sessions/{s['session_id']}/answers",
            headers=bearer(s),
            json={"turn_id": q["turn_id"], "answer": "I think " + " ".join(words).rstrip("?.,") + " matters."},
        )
    assert r.status_code == 200, r.text
    return s, r.json()


async def test_the_judge_writes_the_follow_up_from_the_answer(judged: Live, bank: Bank) -> None:
    written: list[str] = []

    def reply(request: httpx.Request) -> httpx.Response:
        if not _is_follow_up_request(request):
            return _verdict(1.0)
        subject = next(w for w in re.findall(r"[A-Za-z]{5,}", _tag(request, "question")))
        written.append(f"Going back to your answer, what would you check first about the {subject.lower()}?")
        return completion(written[-1])

    assert judged.judge_api is not None
    judged.judge_api.post(BASE_URL + CHAT).mock(side_effect=reply)
    s, data = await _answer_weakly(judged, bank)
    follow_up = turns_of(judged, s["session_id"])[1]
    assert written and data["next_question"]["text"] == written[0] == follow_up.question_text
    assert follow_up.is_follow_up and follow_up.probes_point is not None  # graded against the point it probes
    with judged.db() as db:
        calls = list(db.scalars(select(LLMCall).where(LLMCall.purpose == "follow_up")))
    assert [c.turn_id for c in calls] == [s["question"]["turn_id"]]  # audited, with the turn it follows


async def test_a_follow_up_that_gives_the_point_away_is_not_asked(judged: Live, bank: Bank) -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        if not _is_follow_up_request(request):
            return _verdict(1.0)
        point = _tag(request, "missed_points").splitlines()[0].lstrip("- ").removesuffix(" (essential)")
        return completion(f"Would you agree that {point.rstrip('.')}?")

    assert judged.judge_api is not None
    judged.judge_api.post(BASE_URL + CHAT).mock(side_effect=reply)
    s, data = await _answer_weakly(judged, bank)
    first, follow_up = turns_of(judged, s["session_id"])[:2]
    bank_follow_up = bank.questions[first.question_id].follow_up_for(follow_up.probes_point or "")
    assert bank_follow_up is not None and follow_up.question_text == bank_follow_up.question
    assert data["next_question"]["text"] == bank_follow_up.question
    with judged.db() as db:
        call = db.scalars(select(LLMCall).where(LLMCall.purpose == "follow_up")).one()
    assert call.error is not None and "gives away the point" in call.error
