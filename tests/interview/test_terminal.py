"""The terminal interview, driven through stdin, against the same engine and database."""

from __future__ import annotations

import dataclasses
import io
import json
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.bank.loader import Bank
from app.cli import app as cli_app
from app.context import AppContext
from app.interview.models import InterviewSession, Turn
from app.interview.schemas import AnswerIn, SessionStart
from app.interview.terminal import TerminalInterview


def run_terminal(ctx: AppContext, lines: list[str], **params: object) -> str:
    out = io.StringIO()
    console = Console(file=out, width=120, color_system=None)
    stdin = io.StringIO("".join(line + "\n" for line in lines))
    TerminalInterview(ctx, console, stdin, AnswerIn).run(SessionStart(**params))  # type: ignore[arg-type]
    return out.getvalue()


def test_terminal_practice_flow(ctx: AppContext, db: Session, bank: Bank) -> None:
    # Seed 7 on one topic: find the first question the engine will ask, to answer it well.
    first = run_terminal(
        ctx, ["/quit"], track="mlops", topics=["deployment"], num_questions=2, seed=7, difficulty="medium"
    )
    asked = db.scalars(select(Turn).order_by(Turn.asked_at.desc())).first()
    assert asked is not None and asked.question_text.split()[0] in first
    good = bank.questions[asked.question_id].reference_answer.replace("\n", " ")

    text = run_terminal(
        ctx,
        ["/hint", "", good, "", "/skip", "/idk", "/skip", "/skip"],
        track="mlops",
        topics=["deployment"],
        num_questions=2,
        seed=7,
        difficulty="medium",
    )
    assert "Hint:" in text
    assert "answer is empty" in text  # the blank line was refused, not recorded
    assert "Feedback" in text and "Score" in text
    assert "Report - overall" in text
    session = db.scalars(select(InterviewSession).order_by(InterviewSession.created_at.desc())).first()
    assert session is not None and session.status == "finished"
    answered = [t for t in session.turns if t.status == "answered"]
    assert answered[0].answer_text == good and answered[0].score is not None


def test_a_pasted_paragraph_is_one_answer(ctx: AppContext, db: Session) -> None:
    text = run_terminal(
        ctx,
        ["Canary releases send a small share of traffic", "to the new model first.", "", "/quit"],
        track="mlops",
        num_questions=2,
        mode="interview",
        seed=3,
    )
    assert "end an answer with an empty line" in text
    session = db.scalars(select(InterviewSession).order_by(InterviewSession.created_at.desc())).first()
    assert session is not None
    answered = [t.answer_text for t in session.turns if t.status == "answered"]
    assert answered == ["Canary releases send a small share of traffic\nto the new model first."]


class _Interrupting(io.StringIO):
    """stdin whose second read is Ctrl-C (after one answer line)."""

    def readline(self, size: int | None = -1, /) -> str:  # type: ignore[override]
        if self.tell() > 0:
            raise KeyboardInterrupt
        return super().readline()


def test_ctrl_c_says_the_session_is_saved_and_exits_130(ctx: AppContext, db: Session) -> None:
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    terminal = TerminalInterview(ctx, console, _Interrupting("A first line of an answer\n"), AnswerIn)
    with pytest.raises(SystemExit) as stopped:
        terminal.run(SessionStart(track="mlops", num_questions=1, seed=3))
    assert stopped.value.code == 130
    session = db.scalars(select(InterviewSession).order_by(InterviewSession.created_at.desc())).first()
    assert session is not None and session.status == "active"
    assert f"Resume it with `mockinterview interview --resume {session.id}`" in out.getvalue()
    assert "Every answer you sent is saved" in out.getvalue()


def test_terminal_interview_mode_hides_feedback(ctx: AppContext, bank: Bank) -> None:
    text = run_terminal(
        ctx,
        ["Canary releases send a small share of traffic to the new model."],
        track="mlops",
        num_questions=1,
        mode="interview",
        seed=3,
    )
    assert "Feedback" not in text and "Report - overall" in text


def test_cli_interview_and_grade_on_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bank: Bank) -> None:
    monkeypatch.setenv("MOCKINTERVIEW_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MOCKINTERVIEW_DATABASE_URL", raising=False)
    runner = CliRunner()
    result = runner.invoke(
        cli_app,
        ["interview", "-n", "1", "--seed", "1", "--mode", "practice"],
        input="Model drift is monitored with statistical tests.\n\n/skip\n/skip\n",
    )
    assert result.exit_code == 0, result.output
    assert "Report - overall" in result.output
    assert (tmp_path / "mockinterview.db").exists()

    bad = runner.invoke(cli_app, ["interview", "--mode", "exam"])
    assert bad.exit_code == 2 and "mode" in bad.output

    q = next(iter(bank.questions.values()))
    src = tmp_path / "answers.jsonl"
    src.write_text(
        json.dumps(
            {"id": "a", "question": q.question, "reference_answer": q.reference_answer, "answer": q.reference_answer}
        )
        + "\n"
        + json.dumps(
            {
                "id": "b",
                "question": q.question,
                "reference_answer": q.reference_answer,
                "answer": "I don't know",
                "rubric": [r.point for r in q.rubric],
            }
        )
        + "\n"
    )
    out = tmp_path / "graded.jsonl"
    result = runner.invoke(cli_app, ["grade", "--input", str(src), "--output", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "b"]
    assert rows[0]["score"] >= 3.0 and rows[1]["score"] == 0.0
    assert all(r["judge_status"] == "off" for r in rows)

    src.write_text('{"id": 1, "question": "q"}\n')
    result = runner.invoke(cli_app, ["grade", "--input", str(src), "--output", str(out)])
    assert result.exit_code == 2 and "missing" in result.output
    result = runner.invoke(cli_app, ["grade", "--input", str(tmp_path / "nope.jsonl"), "--output", str(out)])
    assert result.exit_code == 2 and "not found" in result.output


def test_the_first_question_comes_while_the_grader_still_loads(ctx: AppContext, db: Session) -> None:
    """The CLI loads the grader in the background; the terminal asks at once and waits for the
    grader only when the first answer is sent."""
    loading = dataclasses.replace(ctx, grader=None, loaded=threading.Event())
    seen_before_load: list[bool] = []

    class _LoadsOnFirstRead(io.StringIO):
        def readline(self, size: int | None = -1, /) -> str:  # type: ignore[override]
            if not seen_before_load:
                seen_before_load.append(loading.grader is None)  # asked before any grader existed

                def finish_loading() -> None:
                    time.sleep(0.2)
                    loading.grader = ctx.grader
                    loading.loaded.set()

                threading.Thread(target=finish_loading).start()
            return super().readline()

    out = io.StringIO()
    stdin = _LoadsOnFirstRead("Canary releases send a small share of traffic to the new model first.\n\n/quit\n")
    TerminalInterview(loading, Console(file=out, width=120, color_system=None), stdin, AnswerIn).run(
        SessionStart(track="mlops", num_questions=2, seed=3)
    )
    assert seen_before_load == [True]
    session = db.scalars(select(InterviewSession).order_by(InterviewSession.created_at.desc())).first()
    assert session is not None
    answered = [t for t in session.turns if t.status == "answered"]
    assert len(answered) == 1 and answered[0].score is not None and answered[0].grading_status != "ungraded"
