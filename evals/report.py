"""Markdown and HTML eval reports with plots, plus the JSON figures."""

from __future__ import annotations

import html
from pathlib import Path

import matplotlib
from markdown_it import MarkdownIt

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from evals.runner import CONCURRENCY, EvalRun, write_json
from evals.schemas import EvalSummary, ScopeFigures

PLOTS = ("scatter.png", "bands.png", "categories.png")


def _plots(run: EvalRun, out: Path) -> None:
    by = {r.item_id: r for r in run.results}
    rows = [(it, by[it.id]) for it in run.items if by[it.id].score is not None]
    human = [it.human_score for it, _ in rows]
    pred = [float(r.score or 0) for _, r in rows]

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(human, pred, s=12, alpha=0.5)
    ax.plot([0, 5], [0, 5], color="grey", linewidth=1)
    ax.axhline(3.0, color="red", linewidth=0.5, linestyle="--")
    ax.axvline(3.0, color="red", linewidth=0.5, linestyle="--")
    ax.set(
        xlabel="human score",
        ylabel="predicted score",
        xlim=(-0.2, 5.2),
        ylim=(-0.2, 5.2),
        title=f"{run.figures.grader}: predicted vs human",
    )
    fig.tight_layout()
    fig.savefig(out / "scatter.png", dpi=110)
    plt.close(fig)

    conf = run.figures.band_confusion
    fig, ax = plt.subplots(figsize=(4, 3.5))
    grid = [[conf.get(h, {}).get(p, 0) for p in ("fail", "pass")] for h in ("fail", "pass")]
    ax.imshow(grid, cmap="Blues")
    for i in range(2):
        for j in range(2):
            ax.text(j, i, str(grid[i][j]), ha="center", va="center")
    ax.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=["fail", "pass"],
        yticklabels=["fail", "pass"],
        xlabel="predicted band",
        ylabel="human band",
        title="pass/fail band (3.0)",
    )
    fig.tight_layout()
    fig.savefig(out / "bands.png", dpi=110)
    plt.close(fig)

    cats = run.figures.by_category
    fig, ax = plt.subplots(figsize=(7, 3.5))
    names = list(cats)
    ax.bar(names, [cats[c].mae for c in names], label="MAE")
    ax.bar(names, [cats[c].bias for c in names], alpha=0.5, label="bias (pred - human)")
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set(ylabel="score points", title="error by category")
    ax.legend()
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    fig.tight_layout()
    fig.savefig(out / "categories.png", dpi=110)
    plt.close(fig)


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.3f}"


def _scope_row(name: str, block: ScopeFigures) -> str:
    figures = (block.metric(m) for m in ("pearson", "spearman", "qwk", "mae", "rmse", "band_accuracy"))
    return f"| {name} | {block.n} | " + " | ".join(_fmt(v) for v in figures) + " |"


def markdown(figures: EvalSummary, failures: list[str]) -> str:
    lines = [
        f"# Grader eval: {figures.grader}",
        "",
        f"{figures.n_scored} of {figures.n_items} gold answers scored ({figures.unscored} unscored).",
        "",
        "| scope | n | pearson | spearman | qwk | mae | rmse | band accuracy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [_scope_row(name, block) for name, block in [("all", figures.overall), *figures.by_split.items()]]
    lines += [
        "",
        "## By category",
        "",
        "| category | n | mean human | mean predicted | MAE | bias |",
        "|---|---|---|---|---|---|",
    ]
    for cat, c in figures.by_category.items():
        lines.append(f"| {cat} | {c.n} | {c.mean_human} | {c.mean_pred} | {c.mae} | {c.bias} |")
    lines += [
        "",
        "## Invariance",
        "",
        "| kind | pairs | limit | max raise | mean abs diff | passed |",
        "|---|---|---|---|---|---|",
    ]
    for kind, inv in figures.invariance.items():
        lines.append(f"| {kind} | {inv.n} | {inv.limit} | {inv.max_raise} | {inv.mean_abs_diff} | {inv.passed} |")
    j, lat = figures.judge, figures.latency_ms
    lines += [
        "",
        "## Judge and cost",
        "",
        f"- items judged: {j.items_judged}; fallback rate: {j.fallback_rate}; parse failure rate: "
        f"{j.parse_failure_rate}",
        f"- LLM calls: {j.calls} (cache hits {j.cache_hits}, replay misses {j.cache_misses}); "
        f"tokens: {j.prompt_tokens} prompt + {j.completion_tokens} completion",
        f"- time per grading, {CONCURRENCY} at once sharing batches (not what one candidate waits; `bench/` measures "
        f"that): p50 {lat.p50} ms, p95 {lat.p95} ms",
        "",
        "## Plots",
        "",
        *(f"![{p}]({p})" for p in PLOTS),
        "",
        "## Thresholds",
        "",
        *([f"- FAILED: {f}" for f in failures] or ["- all thresholds met"]),
        "",
    ]
    return "\n".join(lines)


def write_report(run: EvalRun, out: Path, failures: list[str]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    _plots(run, out)
    md = markdown(run.figures, failures)
    (out / "report.md").write_text(md, encoding="utf-8")
    body = MarkdownIt("commonmark").enable("table").render(md)  # escapes any raw HTML in text
    (out / "report.html").write_text(
        f"<!doctype html><html lang='en'><meta charset='utf-8'>"
        f"<title>Grader eval: {html.escape(run.figures.grader)}</title>"
        f"<style>body{{font-family:sans-serif;max-width:60em;margin:auto}}td,th{{padding:2px 8px}}</style>"
        f"<body>{body}</body></html>",
        encoding="utf-8",
    )
    write_json(out / "figures.json", run.figures.model_dump() | {"threshold_failures": failures})
    return out
