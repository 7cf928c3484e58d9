"""CLI plumbing: settings validated at start-up, `db upgrade`, `regrade`, `bank validate`."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from app.cli import app as cli_app
from app.config import Settings
from app.context import build_context
from app.interview.models import Turn
from app.interview.schemas import SessionStart


@pytest.fixture
def sqlite_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MOCKINTERVIEW_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MOCKINTERVIEW_DATABASE_URL", raising=False)
    return tmp_path


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("MOCKINTERVIEW_MAX_ANSWER_CHARS", "lots", "max_answer_chars"),
        ("MOCKINTERVIEW_DATABASE_URL", "not a url", "database_url"),
        ("MOCKINTERVIEW_JUDGE_MODEL", "gpt-x", "neither OPENAI_API_KEY nor OPENAI_BASE_URL"),
        ("MOCKINTERVIEW_REVIEWER_TOKEN", "short", "at least 16 characters"),
        ("MOCKINTERVIEW_GRADE_API_TOKEN", "0123456789", "at least 16 characters"),
    ],
)
def test_bad_settings_stop_with_a_clear_message(
    sqlite_env: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, words: str
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli_app, ["db", "upgrade"])
    assert result.exit_code == 2 and words in result.output, result.output


def test_openai_variables_switch_the_judge_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setenv("MOCKINTERVIEW_JUDGE_MODEL", "m")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.judge_enabled and s.openai_base_url == "http://localhost:9/v1" and s.openai_api_key is not None


def test_db_upgrade_and_regrade(sqlite_env: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli_app, ["db", "upgrade"])
    assert result.exit_code == 0 and "head" in result.output
    assert (sqlite_env / "mockinterview.db").exists()

    # An answer kept without a grading (as after a grading failure) ...
    ctx = build_context(Settings(_env_file=None, data_dir=sqlite_env))  # type: ignore[call-arg]
    with ctx.session_factory() as db:
        started = ctx.interviews.start(db, SessionStart(track="mlops", num_questions=1, seed=1))
        ctx.interviews.record_answer(db, started.session, started.turn.id, "Model drift means accuracy decays.")
        db.commit()
        turn_id = started.turn.id
        # and one scored without the judge it should have had (the judge failed) ...
        other = ctx.interviews.start(db, SessionStart(track="mlops", num_questions=1, seed=2))
        ctx.interviews.record_answer(db, other.session, other.turn.id, "Canary releases go to a few users first.")
        other.turn.grading_status, other.turn.judge_pending, other.turn.claimed_by = "embedding_only", True, None
        db.commit()
    # ... are found by `mockinterview regrade`: the first is graded and its session, stuck
    # behind it, moves on; the second waits for a judge, and the command says so.
    result = runner.invoke(cli_app, ["regrade"])
    assert result.exit_code == 0, result.output
    assert "graded 1 ungraded turn(s), regraded 0 judge-pending turn(s)" in result.output, result.output
    assert "1 turn(s) still wait for the LLM judge (no judge is configured)" in result.output
    with ctx.session_factory() as db:
        turn = db.scalars(select(Turn).where(Turn.id == turn_id)).one()
        assert turn.grading_status == "embedding_only" and turn.score is not None and turn.claimed_by is None
        # Not stuck any more: a follow-up is asked, or the session ended.
        assert turn.session.status == "finished" or turn.session.turns[-1].status == "asked"
        assert len(turn.session.turns) > 1 or turn.session.status == "finished"
    ctx.engine.dispose()


def test_bank_validate_with_similarity_is_clean() -> None:
    result = CliRunner().invoke(cli_app, ["bank", "validate"])
    assert result.exit_code == 0, result.output
    assert "ok:" in result.output


def test_regrade_all_with_a_judge_on_sqlite(sqlite_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`regrade --all` with the judge on: the judge's audit rows (their own transactions)
    are written while turns are regraded, with no "database is locked"."""
    import json

    import respx
    from sqlalchemy import func

    from app.grading.models import LLMCall
    from tests.grading.llm_mock import BASE_URL, CHAT, completion, verdict_payload

    runner = CliRunner()
    assert runner.invoke(cli_app, ["db", "upgrade"]).exit_code == 0
    ctx = build_context(Settings(_env_file=None, data_dir=sqlite_env))  # type: ignore[call-arg]
    with ctx.session_factory() as db:
        for seed in (11, 12, 13):
            started = ctx.interviews.start(db, SessionStart(track="mlops", num_questions=2, seed=seed))
            ctx.interviews.record_answer(db, started.session, started.turn.id, "Shadow first, then a canary.")
            db.commit()
    monkeypatch.setenv("MOCKINTERVIEW_JUDGE_MODEL", "judge-test")
    monkeypatch.setenv("OPENAI_BASE_URL", BASE_URL)
    monkeypatch.setenv("MOCKINTERVIEW_JUDGE_CACHE", "false")
    with respx.mock:
        respx.post(BASE_URL + CHAT).mock(return_value=completion(json.dumps(verdict_payload(score=2.5, points=[]))))
        result = runner.invoke(cli_app, ["regrade", "--all"])
    assert result.exit_code == 0, result.output
    assert "graded 3 ungraded turn(s)" in result.output, result.output
    with ctx.session_factory() as db:
        graded = list(db.scalars(select(Turn).where(Turn.status == "answered")))
        assert [t.grading_status for t in graded] == ["graded"] * 3 and not any(t.judge_pending for t in graded)
        assert (db.scalar(select(func.count()).select_from(LLMCall)) or 0) >= 3  # every call audited
    ctx.engine.dispose()


def test_evals_without_their_extra_say_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from evals import cli as evals_cli

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    assert evals_cli.missing_eval_extra() == ["matplotlib"]
    result = CliRunner().invoke(cli_app, ["eval", "semeval"])
    assert result.exit_code == 2
    assert "missing: matplotlib" in result.output and "mockinterview[eval]" in result.output
