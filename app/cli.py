"""The ``mockinterview`` command line.

Every error prints one line that says what is wrong and exits with code 2.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from app.config import Settings
from evals.cli import app as eval_app

if TYPE_CHECKING:
    # Imported for annotations only: each command imports what it runs, so `--help` stays quick.
    from app.context import AppContext
    from app.grading.schemas import GradeInput, GradeResult
    from app.grading.service import Grader

app = typer.Typer(help="Mock technical interviews with graded free-text answers.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
bank_app = typer.Typer(help="The question bank.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(bank_app, name="bank")
app.add_typer(eval_app, name="eval")  # owned by evals/: gold, semeval, mohler, injection, shadow

console = Console()
err = Console(stderr=True)
T = TypeVar("T")


class CliError(Exception):
    """Printed as one line, exit code 2."""


def fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


@contextmanager
def cli_errors() -> Iterator[None]:
    from app.bank.loader import BankError
    from app.errors import AppError

    try:
        yield
    except (CliError, AppError) as exc:
        raise fail(str(exc)) from None
    except BankError as exc:
        raise fail(str(exc).replace("\n", " ")) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise fail(f"invalid setting {where}: {first['msg']}") from None


def load_settings() -> Settings:
    with cli_errors():
        return Settings()


def _context(migrate: bool | None = None) -> AppContext:
    from app.context import build_context

    settings = load_settings()
    with cli_errors():
        return build_context(settings, migrate=migrate)


def _with_grader(ctx: AppContext) -> AppContext:
    """Load the grader. Unlike the server, a command does not embed the whole bank first: it
    grades a few answers, and their texts are embedded (and cached) as they come."""
    with console.status("Loading the embedding model..."):
        ctx.load_grader(preload=False)
    _grader(ctx)
    return ctx


def _grader(ctx: AppContext) -> Grader:
    """The loaded grader, or a one-line error (exit 2) that says why it did not load."""
    if ctx.grader is None:
        raise fail(f"could not load the grader: {ctx.grader_error}")
    return ctx.grader


def main() -> None:
    app()


# --------------------------------------------------------------------------- serve
@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (use PostgreSQL for more than one).")] = 1,
) -> None:
    """Run the web service (JSON API at /api, docs at /docs)."""
    import uvicorn

    settings = load_settings()
    if workers > 1 and settings.is_sqlite:
        raise fail("several workers need a shared PostgreSQL database (MOCKINTERVIEW_DATABASE_URL)")
    if workers == 1:
        from app.main import create_app

        uvicorn.run(create_app(settings), host=host, port=port)
    else:
        uvicorn.run("app.main:create_app", factory=True, host=host, port=port, workers=workers)


# ------------------------------------------------------------------------------ db
@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply the database migrations."""
    from app.db.migrate import upgrade

    settings = load_settings()
    with cli_errors():
        try:
            upgrade(settings.sqlalchemy_url, revision)
        except Exception as exc:
            raise CliError(f"migration failed: {type(exc).__name__}: {exc}".splitlines()[0]) from exc
    console.print(f"database at revision {revision}: {_safe_url(settings.sqlalchemy_url)}")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# ---------------------------------------------------------------------------- bank
@bank_app.command("validate")
def bank_validate(
    extra: Annotated[list[Path] | None, typer.Argument(help="More bank folders to check.")] = None,
    no_similarity: Annotated[bool, typer.Option(help="Skip the near-duplicate check (no model load).")] = False,
    threshold: Annotated[float, typer.Option(help="Cosine similarity that counts as a near-duplicate.")] = 0.92,
) -> None:
    """Check every bank file; report each problem with file and field. Exit 0 clean, 2 otherwise."""
    from app.bank.loader import bank_folders, load_bank

    settings = load_settings()
    folders = bank_folders([*settings.bank_dirs, *(extra or [])], settings.bundled_bank)
    bank, problems = load_bank(folders, strict=False)
    from app.bank.validation import grading_knowledge, hints_that_give_it_away

    problems += grading_knowledge(bank) + hints_that_give_it_away(bank)
    if not no_similarity and bank.questions:
        from app.bank.validation import near_duplicates
        from app.grading.embedding import Encoder

        encoder = Encoder(settings.embedding_model, settings.cache_dir)
        problems += near_duplicates(bank, encoder.encode, threshold)
    for p in problems:
        console.print(str(p), highlight=False, soft_wrap=True)
    if problems:
        err.print(f"{len(problems)} problem(s) in {len(folders)} folder(s)")
        raise typer.Exit(code=2)
    console.print(f"ok: {len(bank.questions)} questions in {len(folders)} folder(s), bank version {bank.version}")


@bank_app.command("stats")
def bank_stats(as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False) -> None:
    """Counts by track, topic, difficulty and type."""
    from app.bank.loader import bank_folders, load_bank, stats

    settings = load_settings()
    with cli_errors():
        bank, _ = load_bank(bank_folders(settings.bank_dirs, settings.bundled_bank))
    figures = stats(bank)
    if as_json:
        typer.echo(json.dumps(figures, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"{figures['total']} questions (bank version {figures['version']})")
    for col in ("track", "topic", "questions"):
        table.add_column(col)
    for track, topics in figures["by_topic"].items():  # type: ignore[attr-defined]
        for topic, n in topics.items():
            table.add_row(track, topic, str(n))
    console.print(table)
    console.print(f"by difficulty: {figures['by_difficulty']}  by type: {figures['by_type']}")


# --------------------------------------------------------------------------- grade
def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise CliError(f"input file not found: {path}")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CliError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise CliError(f"{path}:{n}: each line must be a JSON object")
        missing = [k for k in ("question", "reference_answer", "answer") if not isinstance(row.get(k), str)]
        if missing:
            raise CliError(f"{path}:{n}: missing or non-string field(s): {', '.join(missing)}")
        rubric = row.get("rubric")
        if rubric is not None and not (isinstance(rubric, list) and all(isinstance(r, str) for r in rubric)):
            raise CliError(f"{path}:{n}: rubric must be a list of strings")
        row.setdefault("id", n)
        rows.append(row)
    return rows


def judge_status(result: GradeResult, judge_on: bool) -> str:
    """``off`` (no judge configured), ``not_needed`` (non-answer), or how the judging ended
    (``ok``, ``parse_error``, ``unavailable``)."""
    if not judge_on:
        return "off"
    if result.judge_status is None:
        return "not_needed"
    return result.judge_status.value


async def _grade_all(grader: Grader, items: list[GradeInput], on_done: Callable[[], None]) -> list[GradeResult]:
    async def one(item: GradeInput) -> GradeResult:
        result = await grader.grade(item)
        on_done()
        return result

    return list(await asyncio.gather(*(one(i) for i in items)))


@app.command()
def grade(
    input: Annotated[
        Path, typer.Option("--input", "-i", help="JSON lines: question, reference_answer, answer, [rubric], [id].")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the graded JSON lines.")],
) -> None:
    """Grade a file of answers (same grader as the service)."""
    from app.grading.routes import GradeRequest

    with cli_errors():
        rows = _read_jsonl(input)
        items = []
        for n, row in enumerate(rows, start=1):
            try:
                items.append(
                    GradeRequest(
                        **{k: row[k] for k in ("question", "reference_answer", "answer", "rubric") if k in row}
                    ).to_input()
                )
            except ValidationError as exc:
                raise CliError(f"{input}: line {n}: {exc.errors()[0]['msg']}") from None
    ctx = _with_grader(_context())
    with Progress(
        TextColumn("grading"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err
    ) as progress:
        task = progress.add_task("grade", total=len(items))
        results = asyncio.run(_grade_all(_grader(ctx), items, lambda: progress.advance(task)))
    judge_on = ctx.settings.judge_enabled
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8") as fh:
        for row, result in zip(rows, results, strict=True):
            out = {"id": row["id"], "score": result.score, "judge_status": judge_status(result, judge_on)}
            out |= result.model_dump(mode="json", exclude={"score", "judge_status"})
            fh.write(json.dumps(out, ensure_ascii=False) + "\n")
    scored = [r.score for r in results if r.score is not None]
    mean = sum(scored) / len(scored) if scored else float("nan")
    console.print(f"graded {len(results)} answers -> {output} (mean score {mean:.2f})")


# ------------------------------------------------------------------------- regrade
@app.command()
def regrade(
    all_turns: Annotated[
        bool, typer.Option("--all", help="Regrade every answered turn, not just those that need it.")
    ] = False,
) -> None:
    """Grade the answers that need it: ``ungraded`` ones (the grader failed or the server
    stopped), and ``embedding_only`` ones whose judge failed or was late (when a judge is
    configured). Sessions stuck behind such an answer move on. Safe beside running servers:
    each answer is claimed first, so nothing is graded twice."""
    from sqlalchemy import func, select

    from app.interview.models import Turn
    from app.interview.sweeper import Background, SweepCounts, Sweeper

    ctx = _with_grader(_context())
    service = ctx.interviews
    sweeper = Sweeper(service)
    counts = SweepCounts()

    async def run() -> None:
        background = Background(service, kind="cli", sweep_interval_s=0)
        await background.start()
        seen: set[str] = set()
        try:
            while True:
                ids = await in_thread(sweeper.claim, 20, all_turns, seen)
                if not ids:
                    break
                seen.update(ids)
                for turn_id in ids:
                    await sweeper.work_on(turn_id, counts, force=all_turns)
        finally:
            await background.stop()

    from app.db.base import in_thread

    asyncio.run(run())
    console.print(
        f"graded {counts.ungraded} ungraded turn(s), regraded {counts.judge_pending} judge-pending turn(s), "
        f"moved on {counts.stuck} stuck session(s); {counts.failed} failed"
    )
    if not sweeper.judge_ready:
        with ctx.session_factory() as db:
            waiting = db.scalar(select(func.count()).select_from(Turn).where(Turn.judge_pending)) or 0
        if waiting:
            why = "no judge is configured" if _grader(ctx).judge is None else "the judge is not reachable"
            console.print(f"{waiting} turn(s) still wait for the LLM judge ({why})")
    if counts.failed:
        raise typer.Exit(code=1)


# ----------------------------------------------------------------------- interview
@app.command()
def interview(
    track: Annotated[str, typer.Option(help="Track to practise.")] = "mlops",
    topic: Annotated[list[str] | None, typer.Option("--topic", help="Topic (repeat for several).")] = None,
    difficulty: Annotated[str, typer.Option(help="easy, medium, hard or adaptive.")] = "adaptive",
    num_questions: Annotated[int, typer.Option("--num-questions", "-n", help="Main questions.")] = 5,
    mode: Annotated[str, typer.Option(help="practice (feedback each answer) or interview (at the end).")] = "practice",
    seed: Annotated[int | None, typer.Option(help="Fix the question order.")] = None,
    resume: Annotated[
        str | None, typer.Option("--resume", metavar="SESSION_ID", help="Continue an unfinished session.")
    ] = None,
) -> None:
    """A mock interview in the terminal. Commands: /skip, /hint, /idk, /quit."""
    from app.interview.schemas import AnswerIn, SessionStart
    from app.interview.terminal import TerminalInterview

    if resume is not None:
        ctx = _with_grader(_context())
        with cli_errors():
            TerminalInterview(ctx, console, sys.stdin, answer_model=AnswerIn).run(resume_id=resume)
        return
    with cli_errors():
        try:
            params = SessionStart(
                track=track,
                topics=topic or [],
                difficulty=difficulty,
                num_questions=num_questions,
                mode=mode,
                seed=seed,
            )
        except ValidationError as exc:
            e = exc.errors()[0]
            raise CliError(f"--{'-'.join(str(p) for p in e['loc'])}: {e['msg']}") from None
    ctx = _context()
    # The first question needs no model: ask it at once and load the grader meanwhile (the
    # terminal waits for it only when the first answer is sent).
    threading.Thread(target=ctx.load_grader, kwargs={"preload": False}, name="grader-load", daemon=True).start()
    with cli_errors():
        TerminalInterview(ctx, console, sys.stdin, answer_model=AnswerIn).run(params)
