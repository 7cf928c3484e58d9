"""The terminal interview: the same engine and database as the API, driven by lines of text.

An answer may span several lines (a pasted paragraph stays one answer): it ends with an empty
line, or with the end of input. A line starting with ``/`` at the prompt is a command: ``/skip``,
``/hint``, ``/idk`` (I don't know), ``/quit`` (finish now and show the report). End of input
finishes the session too. Ctrl-C stops at once, says the session is saved and how to resume it,
and exits 130.

Input is read outside the event loop: one ``asyncio.Runner`` lives for the whole interview and
runs only the grading steps, so Ctrl-C at the prompt is an ordinary ``KeyboardInterrupt`` (inside
``asyncio.run`` the first one only cancelled a task that was not running, and was lost).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, TextIO

from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from sqlalchemy.orm import Session

from app.errors import AppError
from app.grading.schemas import GradeResult, Verdict
from app.interview.schemas import SessionStart
from app.interview.service import IDK_ANSWER
from app.reports.schemas import Report
from app.statuses import SessionMode, SessionStatus, TurnGradingStatus

if TYPE_CHECKING:
    from app.context import AppContext
    from app.interview.models import InterviewSession, Turn

VERDICT_MARK = {
    Verdict.covered: "[green]covered[/]",
    Verdict.partial: "[yellow]partial[/]",
    Verdict.missing: "[red]missing[/]",
    Verdict.wrong: "[red]wrong[/]",
    Verdict.unclear: "[yellow]not confirmed[/]",
}


def print_feedback(console: Console, result: GradeResult) -> None:
    band = "pass" if result.passed else "below the pass mark"
    lines = [
        f"[bold]Score {result.score} / 5[/] ({band})",
        f"[dim]{result.status_message}[/]",
    ]
    for p in result.points:
        evidence = f' - "{p.evidence}"' if p.evidence and p.verdict in (Verdict.covered, Verdict.partial) else ""
        lines.append(f"  {VERDICT_MARK[p.verdict]}: {p.text}{evidence}")
    if result.improvement:
        lines.append(f"[bold]Next time:[/] {result.improvement}")
    console.print(Panel("\n".join(lines), title="Feedback", expand=False), highlight=False)


def print_report(console: Console, report: Report) -> None:
    overall = report.overall_score
    table = Table(
        title=f"Report - overall {overall if overall is not None else 'n/a'} / 5"
        + ("" if report.passed is None else (" (pass)" if report.passed else " (not yet a pass)"))
    )
    table.add_column("topic")
    table.add_column("score")
    for topic, score in report.topic_scores.items():
        table.add_row(report.topic(topic), f"{score}")
    console.print(table)
    for gap in report.gaps[:5]:
        console.print(f"  to work on: {gap.point}", markup=False, highlight=False)
    for rec in report.recommended:
        console.print(f"  practise next: ({report.topic(rec.topic)}) {rec.question}", markup=False, highlight=False)
    if report.ungraded_turns:
        console.print(
            f"  {len(report.ungraded_turns)} answer(s) are saved but not graded yet (run `mockinterview regrade`)."
        )


class TerminalInterview:
    def __init__(self, ctx: AppContext, console: Console, stdin: TextIO, answer_model: type[BaseModel]):
        self.ctx = ctx
        self.console = console
        self.stdin = stdin
        self.answer_model = answer_model
        self.service = ctx.interviews
        self._session_id: str | None = None
        self._runner = asyncio.Runner()

    def _read(self) -> str | None:
        """A command, or an answer's lines up to an empty line; ``None`` at the end of input."""
        self.console.print("[bold cyan]> [/]", end="")
        first = self.stdin.readline()
        if not first:
            return None
        lines = [first.rstrip("\n")]
        if lines[0].startswith("/") or not lines[0].strip():
            return lines[0]
        while (line := self.stdin.readline()) and line.strip():
            lines.append(line.rstrip("\n"))
        return "\n".join(lines)

    def _ask(self, session: InterviewSession, turn: Turn) -> None:
        q = self.service.question_out(session, turn)
        label = "Follow-up" if q.is_follow_up else f"Question {q.number}/{q.total}"
        self.console.print(
            Panel(q.text, title=f"{label} - {escape(q.topic_title or q.topic)} ({q.difficulty})", expand=False),
            highlight=False,
        )
        if q.difficulty_note:
            self.console.print(f"[dim]{q.difficulty_note}[/dim]", highlight=False)

    def run(self, params: SessionStart | None = None, resume_id: str | None = None) -> None:
        """Run the interview; on Ctrl-C say what was kept and exit with status 130."""
        self._session_id = resume_id
        with self._runner:
            try:
                self._run(params, resume_id)
            except KeyboardInterrupt:
                sid = self._session_id
                where = f" Resume it with `mockinterview interview --resume {sid}`." if sid else ""
                self.console.print(f"\n[yellow]Stopped. Every answer you sent is saved.{where}[/]", highlight=False)
                raise SystemExit(130) from None

    def _run(self, params: SessionStart | None, resume_id: str | None) -> None:
        with self.ctx.session_factory() as db:
            if resume_id is not None:
                session = self.service.get_session(db, resume_id)
                _ = session.turns
                db.commit()
                # Like the page and the API: a session stuck behind an answer whose grading
                # stopped (the process died) is graded and moved on.
                self._runner.run(self._grader_ready())
                turn = self._runner.run(self.service.resume(db, session))
                db.commit()
                if session.status != SessionStatus.finished and turn is None:
                    self.console.print(
                        "[yellow]The last answer is still being graded by a running server; try again shortly.[/]"
                    )
                    return
                self.console.print(
                    f"Resuming session {session.id} ({session.mode} mode). Commands: /skip /hint /idk /quit; "
                    "end an answer with an empty line"
                )
            else:
                assert params is not None
                started = self.service.start(db, params)
                db.commit()
                session, turn = started.session, started.turn
                self._session_id = session.id
                self.console.print(
                    f"Session {session.id} ({params.mode} mode; resume it with "
                    f"`mockinterview interview --resume {session.id}`). Commands: /skip /hint /idk /quit; "
                    "end an answer with an empty line"
                )
            while turn is not None:
                self._ask(session, turn)
                line = self._read()
                command = "/quit" if line is None else line.strip()  # end of input finishes
                try:
                    if command == "/quit":
                        break
                    if command == "/hint":
                        _, hint, left = self.service.hint(db, session, turn.id)
                        db.commit()
                        self.console.print(f"[yellow]Hint:[/] {hint} ({left} left)", highlight=False)
                        continue
                    if command == "/skip":
                        turn = self.service.skip(db, session, turn.id)
                        db.commit()
                        continue
                    text = IDK_ANSWER if command == "/idk" else line or ""
                    try:
                        self.answer_model.model_validate({"turn_id": turn.id, "answer": text})
                    except ValidationError as exc:
                        self.console.print(f"[red]{exc.errors()[0]['msg'].removeprefix('Value error, ')}[/]")
                        continue
                    turn = self._runner.run(self._answer(db, session, turn, text))
                except AppError as exc:
                    self.console.print(f"[red]{exc.message}[/]")
            report = self.service.finish(db, session)
            db.commit()
            print_report(self.console, report)

    async def _grader_ready(self) -> None:
        """Wait for a grader that is still loading in the background (the CLI asks the first
        question before the model is loaded, so the candidate reads while it loads)."""
        if self.ctx.grader is not None:
            return
        if not self.ctx.loaded.is_set():
            with self.console.status("loading the grader..."):
                await asyncio.to_thread(self.ctx.loaded.wait)
        if self.ctx.grader is None:
            self.console.print(f"[red]The grader could not be loaded: {self.ctx.grader_error}[/]", highlight=False)
        self.service = self.ctx.interviews

    async def _answer(self, db: Session, session: InterviewSession, turn: Turn, text: str) -> Turn | None:
        await self._grader_ready()
        with self.console.status("grading..."):
            out = await self.service.answer(db, session, turn.id, text)
            db.commit()
        if out.turn.grading_status == TurnGradingStatus.ungraded:
            self.console.print("[yellow]Your answer is saved but could not be graded now; it will be graded later.[/]")
        if out.result is not None and session.mode == SessionMode.practice:
            print_feedback(self.console, out.result)
        return out.next_turn
