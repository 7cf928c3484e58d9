"""``mockinterview eval``: the evals as a typer sub-app, mounted by ``app.cli``.

``eval gold`` loads the gold set, runs one or two grader configurations, reports and gates;
``eval semeval|mohler`` measure the grader on real human labels, ``eval injection`` its
handling of prompt injection, ``eval shadow`` the live agreement of the shadow grader.
``mockinterview eval`` alone runs ``eval gold``. Every error prints one line and exits 2, a
figure below its threshold in ``evals/thresholds.yaml`` exits 1.

This module is imported by every ``mockinterview`` command, so the evals themselves (scipy,
scikit-learn, the model) are imported only when an eval runs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from app.bank.loader import Bank
    from app.config import Settings
    from app.grading.embedding_grader import EmbeddingGrader
    from evals.gold import GoldItem, PairItem
    from evals.runner import EvalRun
    from evals.schemas import Comparison, EvalSummary, GraderConfig

app = typer.Typer(
    help="Measure the grader: gold set, real human labels, prompt injection, shadow agreement.",
    invoke_without_command=True,
)

HARD_CATEGORIES = ("swapped-facts", "keyword-list", "terse-correct", "plain-words", "misconception", "paraphrase")
SPLITS = ("all", "train", "test")


def _embedding(settings: Settings) -> EmbeddingGrader:
    from app.grading.embedding import Encoder
    from app.grading.embedding_grader import EmbeddingGrader

    return EmbeddingGrader(Encoder.from_settings(settings))


# ------------------------------------------------------------------------------ commands
EVAL_EXTRA = ("scipy", "sklearn", "matplotlib", "markdown_it")
"""What the evals import beyond the service (the ``eval`` extra of pyproject.toml)."""


def missing_eval_extra() -> list[str]:
    """The eval extra's modules that cannot be imported here."""
    import importlib.util

    return [name for name in EVAL_EXTRA if importlib.util.find_spec(name) is None]


@app.callback()
def _eval(ctx: typer.Context) -> None:
    """Measure the grader against human scores; exit 1 when a figure falls below its threshold."""
    missing = missing_eval_extra()
    if missing:
        Console(stderr=True).print(
            f"error: the evals need the eval extra (missing: {', '.join(missing)}): pip install 'mockinterview[eval]'",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(2)
    if ctx.invoked_subcommand is None:
        gold()


@app.command("gold")
def gold(
    dataset: Annotated[
        Path | None, typer.Option(help="Gold-set JSON lines (default evals/datasets/gold-v1.jsonl).")
    ] = None,
    grader: Annotated[
        str, typer.Option(help="embedding, judge, hybrid, or the path of a .yaml grader configuration.")
    ] = "embedding",
    report: Annotated[Path | None, typer.Option(help="Folder for the Markdown/HTML/JSON report.")] = None,
    compare_with: Annotated[
        tuple[str, str] | None, typer.Option("--compare", help="Two grader configurations to compare.")
    ] = None,
    split: Annotated[str, typer.Option(help="all, train or test (the held-out questions).")] = "all",
    replay: Annotated[
        bool,
        typer.Option(
            help="Judge answers from the judge's recorded reply cache only (in the data folder's cache; "
            "no network): a reply missing from it fails the gate."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as one JSON object.")] = False,
    no_gate: Annotated[bool, typer.Option(help="Report only; do not exit non-zero on thresholds.")] = False,
) -> None:
    """The rubric regression evals on the gold set (exit 1 below evals/thresholds.yaml)."""
    from app.cli import CliError, cli_errors, console, fail, load_settings

    if split not in SPLITS:
        raise fail("--split must be all, train or test")
    with cli_errors():
        try:
            code = run_gold(
                load_settings(),
                dataset=dataset,
                grader=grader,
                report=report,
                compare_configs=compare_with,
                split=split,
                replay=replay,
                as_json=as_json,
                gate=not no_gate,
                console=console,
            )
        except (ValueError, FileNotFoundError) as exc:
            raise CliError(str(exc)) from exc
    raise typer.Exit(code=code)


def _human(target: str, data: Path | None, as_json: bool, no_gate: bool) -> None:
    from app.cli import console, fail
    from evals.human_data import DataMissing
    from evals.human_eval import run
    from evals.runner import load_thresholds

    limits = {} if no_gate else load_thresholds().get("human", {})
    try:
        code = run(target, data, limits, console, as_json=as_json)
    except DataMissing as exc:
        raise fail(f"{exc} (pass --data DIR)") from None
    raise typer.Exit(code=code)


DataOption = Annotated[
    Path | None, typer.Option(help="Dataset folder (default ../shared/datasets/<name>); exit 2 when absent.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the figures as one JSON object.")]
NoGateOption = Annotated[bool, typer.Option(help="Report only; do not exit non-zero on thresholds.")]


@app.command("semeval")
def semeval(data: DataOption = None, as_json: JsonOption = False, no_gate: NoGateOption = False) -> None:
    """Real student answers (SemEval-2013), question-grouped 5-fold cross-validation."""
    _human("semeval", data, as_json, no_gate)


@app.command("mohler")
def mohler(data: DataOption = None, as_json: JsonOption = False, no_gate: NoGateOption = False) -> None:
    """Real student answers (Mohler 2011), question-grouped 5-fold cross-validation."""
    _human("mohler", data, as_json, no_gate)


@app.command("injection")
def injection(as_json: JsonOption = False, no_gate: NoGateOption = False) -> None:
    """Disguised injections and honest answers about them (exit 1 outside the injection limits)."""
    from app.cli import _context, cli_errors, console
    from evals.injection import run as run_injection
    from evals.runner import load_thresholds

    ctx = _context()
    limits = {} if no_gate else load_thresholds().get("injection", {})
    with cli_errors():
        code = run_injection(
            ctx.settings,
            _embedding(ctx.settings),
            ctx.bank,
            limits,
            console,
            as_json=as_json,
            # Progress goes to stderr with --json, so that stdout is the JSON alone.
            progress=lambda msg: (Console(stderr=True) if as_json else console).print(msg, style="dim"),
        )
    raise typer.Exit(code=code)


@app.command("shadow")
def shadow() -> None:
    """The live agreement of the shadow grader with the served one (JSON)."""
    from app.cli import _context
    from evals.shadow import shadow_agreement

    ctx = _context()
    with ctx.session_factory() as db:
        figures = shadow_agreement(db)
    typer.echo(json.dumps(figures, indent=2))


# ------------------------------------------------------------------------------ eval gold
@dataclass
class GoldData:
    bank: Bank
    items: list[GoldItem]
    pairs: list[PairItem]
    held_out: set[str]


def _run(config: GraderConfig, settings: Settings, embedding: EmbeddingGrader, data: GoldData) -> EvalRun:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from evals.runner import run_eval

    total = len(data.items) + 2 * len(data.pairs)
    with Progress(
        TextColumn(f"[bold]{config.name}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as progress:
        task = progress.add_task(config.name, total=total)
        return run_eval(
            config,
            settings,
            embedding,
            data.bank,
            data.items,
            data.pairs,
            data.held_out,
            advance=lambda: progress.advance(task),
        )


def _print(figures: EvalSummary, failures: list[str], console: Console, misses: Sequence[str] = ()) -> None:
    from rich.table import Table

    from evals.runner import CONCURRENCY

    table = Table(title=f"grader {figures.grader}: {figures.n_scored}/{figures.n_items} scored")
    for col in ("scope", "n", "pearson", "spearman", "qwk", "mae", "band acc"):
        table.add_column(col)
    for name, b in [("all", figures.overall), *figures.by_split.items()]:
        values = (b.metric(m) for m in ("pearson", "spearman", "qwk", "mae", "band_accuracy"))
        table.add_row(name, str(b.n), *(f"{v:.3f}" if v is not None else "" for v in values))
    console.print(table)
    cats = Table(title="categories that judge correctness, not vocabulary")
    for col in ("category", "n", "questions", "mean human", "mean grader", "pass rate"):
        cats.add_column(col)
    for name in HARD_CATEGORIES:
        c = figures.by_category.get(name)
        if c is not None:
            cats.add_row(
                name, str(c.n), str(c.questions), f"{c.mean_human:.2f}", f"{c.mean_pred:.2f}", f"{c.pass_rate:.2f}"
            )
    console.print(cats)
    inv = ", ".join(
        f"{k} {'ok' if v.passed else 'FAILED'} (max raise {v.max_raise})" for k, v in figures.invariance.items()
    )
    console.print(f"invariance: {inv}")
    j = figures.judge
    if figures.kind != "embedding":
        console.print(
            f"judge: fallback {j.fallback_rate}, parse failures {j.parse_failure_rate}, "
            f"calls {j.calls} (cached {j.cache_hits}, replay misses {j.cache_misses}), "
            f"tokens {j.prompt_tokens}+{j.completion_tokens}"
        )
    console.print(
        f"time per grading, {CONCURRENCY} at once sharing batches (not what one candidate waits; "
        f"bench/ measures that): p50 {figures.latency_ms.p50} ms, p95 {figures.latency_ms.p95} ms"
    )
    for m in misses:
        console.print(f"[yellow]target not met yet:[/] {m}", highlight=False)
    for f in failures:
        console.print(f"[red]threshold failed:[/] {f}", highlight=False)
    if not failures:
        console.print("[green]all thresholds met[/]")


def run_gold(
    settings: Settings,
    *,
    dataset: Path | None,
    grader: str,
    report: Path | None,
    compare_configs: tuple[str, str] | None,
    split: str,
    replay: bool,
    as_json: bool,
    gate: bool,
    console: Console,
) -> int:
    from app.bank.loader import bank_folders, load_bank
    from evals.gold import DEFAULT_GOLD, DEFAULT_PAIRS, load_gold, load_pairs, split_of, test_questions
    from evals.report import write_report
    from evals.runner import check_targets, check_thresholds, compare, default_report_dir, load_thresholds, write_json
    from evals.schemas import GraderConfig

    bank, _ = load_bank(bank_folders(settings.bank_dirs, settings.bundled_bank))
    held_out = test_questions()
    items = load_gold(dataset or DEFAULT_GOLD)
    pairs = load_pairs(DEFAULT_PAIRS) if dataset is None else []
    if split != "all":
        items = [it for it in items if split_of(it.question_id, held_out) == split]
        pairs = [p for p in pairs if split_of(p.question_id, held_out) == split]
    data = GoldData(bank, items, pairs, held_out)
    # Every configuration is checked before the embedding model loads (seconds), so a typo fails fast.
    configs = [GraderConfig.load(c, replay) for c in (compare_configs or (grader,))]
    embedding = _embedding(settings)

    if compare_configs is not None:
        a_cfg, b_cfg = configs
        a, b = _run(a_cfg, settings, embedding, data), _run(b_cfg, settings, embedding, data)
        result = compare(a, b)
        out = report or default_report_dir(f"compare-{a_cfg.name}-vs-{b_cfg.name}")
        write_json(out / "compare.json", result)
        (out / "compare.md").write_text(compare_markdown(result), encoding="utf-8")
        if as_json:
            print(json.dumps(result.model_dump(), indent=2))
        else:
            console.print(compare_markdown(result), highlight=False)
            console.print(f"report: {out}")
        return 0

    config = configs[0]
    run = _run(config, settings, embedding, data)
    thresholds = load_thresholds()
    failures = check_thresholds(run.figures, thresholds)
    misses = check_targets(run.figures, thresholds)
    out = write_report(run, report or default_report_dir(config.name), failures)
    if as_json:
        figures = run.figures.model_dump() | {"threshold_failures": failures, "targets_not_met": misses}
        print(json.dumps(figures, indent=2, default=str))
    else:
        _print(run.figures, failures, console, misses)
        console.print(f"report: {out / 'report.md'} and report.html")
    return 1 if failures and gate else 0


def compare_markdown(result: Comparison) -> str:
    lines = [
        f"# {result.b} vs {result.a} ({result.n_common} answers scored by both)",
        "",
        "| metric | A | B | B - A | 95% CI | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for metric, m in result.metrics.items():
        a, b = m.a, m.b
        lines.append(
            f"| {metric} | {a:.3f} | {b:.3f} | {m.diff:+.3f} | [{m.ci95[0]:+.3f}, {m.ci95[1]:+.3f}] | {m.verdict} |"
            if isinstance(a, float) and isinstance(b, float)
            else f"| {metric} | {a} | {b} | {m.diff} | {m.ci95} | {m.verdict} |"
        )
    return "\n".join(lines) + "\n"
