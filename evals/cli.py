"""``mockinterview eval gold``: load the gold set, run one or two grader configurations, report, gate."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from app.bank.loader import bank_folders, load_bank
from app.config import Settings
from evals.gold import DEFAULT_GOLD, DEFAULT_PAIRS, load_gold, load_pairs, split_of, test_questions
from evals.runner import (
    EvalRun,
    GraderConfig,
    check_targets,
    check_thresholds,
    compare,
    default_report_dir,
    load_thresholds,
    run_eval,
    write_json,
)


def _embedding(settings: Settings) -> Any:
    from app.grading.embedding import Encoder
    from app.grading.embedding_grader import EmbeddingGrader

    return EmbeddingGrader(Encoder(settings.embedding_model, settings.cache_dir, bf16=settings.embedding_bf16))


def _run(config: GraderConfig, settings: Settings, embedding: Any, data: dict[str, Any], console: Console) -> EvalRun:
    total = len(data["items"]) + 2 * len(data["pairs"])
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
            data["bank"],
            data["items"],
            data["pairs"],
            data["held_out"],
            advance=lambda: progress.advance(task),
        )


HARD_CATEGORIES = ("swapped-facts", "keyword-list", "terse-correct", "plain-words", "misconception", "paraphrase")


def _print(figures: dict[str, Any], failures: list[str], console: Console, misses: Sequence[str] = ()) -> None:
    table = Table(title=f"grader {figures['grader']}: {figures['n_scored']}/{figures['n_items']} scored")
    for col in ("scope", "n", "pearson", "spearman", "qwk", "mae", "band acc"):
        table.add_column(col)
    for name, b in [("all", figures["overall"]), *figures["by_split"].items()]:
        table.add_row(
            name,
            str(b.get("n")),
            *(f"{b[m]:.3f}" if m in b else "" for m in ("pearson", "spearman", "qwk", "mae", "band_accuracy")),
        )
    console.print(table)
    cats = Table(title="categories that judge correctness, not vocabulary")
    for col in ("category", "n", "questions", "mean human", "mean grader", "pass rate"):
        cats.add_column(col)
    for name in HARD_CATEGORIES:
        c = figures["by_category"].get(name)
        if c:
            cats.add_row(
                name,
                str(c["n"]),
                str(c.get("questions", "")),
                f"{c['mean_human']:.2f}",
                f"{c['mean_pred']:.2f}",
                f"{c.get('pass_rate', 0):.2f}",
            )
    console.print(cats)
    inv = ", ".join(
        f"{k} {'ok' if v['passed'] else 'FAILED'} (max raise {v['max_raise']})"
        for k, v in figures["invariance"].items()
    )
    console.print(f"invariance: {inv}")
    j = figures["judge"]
    if figures["kind"] != "embedding":
        console.print(
            f"judge: fallback {j['fallback_rate']}, parse failures {j['parse_failure_rate']}, "
            f"calls {j['calls']} (cached {j['cache_hits']}, replay misses {j['cache_misses']}), "
            f"tokens {j['prompt_tokens']}+{j['completion_tokens']}"
        )
    console.print(f"latency per grading: p50 {figures['latency_ms']['p50']} ms, p95 {figures['latency_ms']['p95']} ms")
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
    bank, _ = load_bank(bank_folders(settings.bank_dirs, settings.bundled_bank))
    held_out = test_questions()
    items = load_gold(dataset or DEFAULT_GOLD)
    pairs = load_pairs(DEFAULT_PAIRS) if dataset is None else []
    if split != "all":
        items = [it for it in items if split_of(it.question_id, held_out) == split]
        pairs = [p for p in pairs if split_of(p.question_id, held_out) == split]
    data = {"bank": bank, "items": items, "pairs": pairs, "held_out": held_out}
    # Every configuration is checked before the embedding model loads (seconds), so a typo fails fast.
    configs = [GraderConfig.load(c, replay) for c in (compare_configs or (grader,))]
    embedding = _embedding(settings)

    if compare_configs is not None:
        a_cfg, b_cfg = configs
        a, b = _run(a_cfg, settings, embedding, data, console), _run(b_cfg, settings, embedding, data, console)
        result = compare(a, b)
        out = report or default_report_dir(f"compare-{a_cfg.name}-vs-{b_cfg.name}")
        write_json(out / "compare.json", result)
        (out / "compare.md").write_text(compare_markdown(result), encoding="utf-8")
        if as_json:
            print(json.dumps(result, indent=2))
        else:
            console.print(compare_markdown(result), highlight=False)
            console.print(f"report: {out}")
        return 0

    config = configs[0]
    run = _run(config, settings, embedding, data, console)
    thresholds = load_thresholds()
    failures = check_thresholds(run.figures, thresholds)
    misses = check_targets(run.figures, thresholds)
    from evals.report import write_report

    out = write_report(run, report or default_report_dir(config.name), failures)
    if as_json:
        print(
            json.dumps(run.figures | {"threshold_failures": failures, "targets_not_met": misses}, indent=2, default=str)
        )
    else:
        _print(run.figures, failures, console, misses)
        console.print(f"report: {out / 'report.md'} and report.html")
    return 1 if failures and gate else 0


def compare_markdown(result: dict[str, Any]) -> str:
    lines = [
        f"# {result['b']} vs {result['a']} ({result['n_common']} answers scored by both)",
        "",
        "| metric | A | B | B - A | 95% CI | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for metric, m in result["metrics"].items():
        a, b = m["a"], m["b"]
        lines.append(
            f"| {metric} | {a:.3f} | {b:.3f} | {m['diff']:+.3f} | "
            f"[{m['ci95'][0]:+.3f}, {m['ci95'][1]:+.3f}] | {m['verdict']} |"
            if isinstance(a, float) and isinstance(b, float)
            else f"| {metric} | {a} | {b} | {m['diff']} | {m['ci95']} | {m['verdict']} |"
        )
    return "\n".join(lines) + "\n"
