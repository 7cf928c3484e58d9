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
