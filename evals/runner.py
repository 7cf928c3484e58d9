"""Rubric regression evals: score the gold set with a grader configuration, measure agreement
with the human scores, check invariances, compare configurations, and gate on thresholds.

Everything goes through the real grading code (``app.grading.service.Grader``).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from app.bank.loader import Bank
from app.config import REPO_ROOT, Settings, resource_dir
from app.grading.embedding_grader import EmbeddingGrader
from app.grading.schemas import PASS_MARK, GradeInput, GradeResult, LLMCallRecord
from app.grading.service import Grader
from evals.gold import GoldItem, PairItem, grade_input, split_of
from evals.metrics import LOWER_IS_BETTER, all_metrics, band_confusion, bootstrap_difference, mae
from evals.schemas import (
    CategoryFigures,
    Comparison,
    EvalSummary,
    GraderConfig,
    InvarianceFigures,
    JudgeFigures,
    LatencyFigures,
    MetricComparison,
    ScopeFigures,
    Violation,
)

EVALS = resource_dir("evals")
THRESHOLDS = EVALS / "thresholds.yaml"

CONCURRENCY = 16
"""Gradings in flight at once during an eval (they share embedding batches, as in the service)."""
INVARIANCE_LIMITS = {"paraphrase": 0.5, "padding": 0.3, "injection": 0.0}
"""Paraphrase within 0.5; padding raises the score by at most 0.3; injection never raises it."""


@dataclass
class ItemResult:
    item_id: str
    question_id: str
    score: float | None
    result: GradeResult
    latency_ms: float
    calls: list[LLMCallRecord] = field(default_factory=list)


class Scorer:
    """Builds a Grader for one configuration and scores inputs with it."""

    def __init__(self, config: GraderConfig, settings: Settings, embedding: EmbeddingGrader) -> None:
        self.config = config
        self.calls: list[LLMCallRecord] = []
        judge = None
        if config.grader != "embedding":
            from app.grading.judge import Judge

            overrides: dict[str, Any] = {}
            if config.judge_model:
                overrides["judge_model"] = config.judge_model
            if config.prompt_version:
                overrides["judge_prompt_version"] = config.prompt_version
            if config.base_url:
                overrides["openai_base_url"] = config.base_url
            if config.cache == "replay" and not (settings.openai_base_url or config.base_url):
                overrides["openai_base_url"] = "http://replay.invalid/v1"  # never called in replay
            # The judge records its replies in its own cache (settings.cache_dir); `replay` reads it only.
            judge_settings = settings.model_copy(update=overrides)
            if not judge_settings.judge_model:
                raise ValueError(
                    f"grader {config.name!r} needs a judge model (MOCKINTERVIEW_JUDGE_MODEL or judge_model)"
                )
            judge = Judge(judge_settings, audit=self.calls.append, cache_mode=config.cache)
            settings = judge_settings
        from app.grading.batching import MicroBatcher

        # The production path: concurrent gradings share embedding batches.
        self.grader = Grader(settings, embedding, judge, MicroBatcher(embedding))

    async def score(self, inp: GradeInput) -> tuple[GradeResult, float | None, float, list[LLMCallRecord]]:
        before = len(self.calls)
        start = time.perf_counter()
        result = await self.grader.grade(inp)
        latency = (time.perf_counter() - start) * 1000
        score = result.judge_score if self.config.grader == "judge" else result.score
        if self.config.grader == "judge" and result.non_answer:
            score = 0.0  # a non-answer needs no judge: 0 for every grader
        return result, score, latency, self.calls[before:]


async def _score_all(
    scorer: Scorer, inputs: Sequence[tuple[str, str, GradeInput]], advance: Callable[[], None], concurrency: int
) -> list[ItemResult]:
    sem = asyncio.Semaphore(concurrency)

    async def one(item_id: str, qid: str, inp: GradeInput) -> ItemResult:
        async with sem:
            result, score, latency, calls = await scorer.score(inp)
        advance()
        return ItemResult(item_id, qid, score, result, latency, calls)

    return list(await asyncio.gather(*(one(*x) for x in inputs)))


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _scope(pred: Sequence[float], human: Sequence[float]) -> ScopeFigures:
    """Agreement figures over some answers (``n`` alone below two answers)."""
    return ScopeFigures(n=len(pred), **all_metrics(pred, human)) if len(pred) >= 2 else ScopeFigures(n=len(pred))


def _category(rows: Sequence[tuple[GoldItem, ItemResult]]) -> CategoryFigures:
    h = [it.human_score for it, _ in rows]
    p = [float(r.score or 0.0) for _, r in rows]
    bias = statistics.fmean(p) - statistics.fmean(h)
    return CategoryFigures(
        n=len(rows),
        questions=len({it.question_id for it, _ in rows}),
        mean_human=round(statistics.fmean(h), 3),
        mean_pred=round(statistics.fmean(p), 3),
        mae=round(mae(p, h), 3),
        bias=round(bias, 3),
        abs_bias=round(abs(bias), 3),
        pass_rate=round(sum(v >= PASS_MARK for v in p) / len(p), 3),
    )


def _invariance(
    kind: str, limit: float, pairs: Sequence[PairItem], pair_results: Sequence[tuple[ItemResult, ItemResult]]
) -> InvarianceFigures:
    """How far the variant's score moves from its base answer's; paraphrases either way, the
    other kinds (padding, injection) only upwards."""
    diffs = [
        (pair.id, float(v.score) - float(b.score))
        for pair, (b, v) in zip(pairs, pair_results, strict=True)
        if pair.kind == kind and b.score is not None and v.score is not None
    ]
    if kind == "paraphrase":
        violations = [(i, d) for i, d in diffs if abs(d) > limit]
    else:
        violations = [(i, d) for i, d in diffs if d > limit + 1e-9]
    return InvarianceFigures(
        n=len(diffs),
        limit=limit,
        max_raise=round(max((d for _, d in diffs), default=0.0), 3),
        mean_abs_diff=round(statistics.fmean([abs(d) for _, d in diffs]), 3) if diffs else None,
        violations=[Violation(id=i, diff=round(d, 3)) for i, d in violations],
        passed=not violations,
    )


def _judge(
    config: GraderConfig, results: Sequence[ItemResult], pair_results: Sequence[tuple[ItemResult, ItemResult]]
) -> JudgeFigures:
    all_calls = [c for r in results for c in r.calls] + [c for b, v in pair_results for c in (*b.calls, *v.calls)]
    judged = [r for r in results if config.grader != "embedding" and not r.result.non_answer]
    failed = [r for r in judged if r.result.judge_score is None]
    parse_failures = [r for r in judged if "judge_parse_error" in r.result.flags]
    return JudgeFigures(
        items_judged=len(judged),
        fallback_rate=round(len(failed) / len(judged), 4) if judged else None,
        parse_failure_rate=round(len(parse_failures) / len(judged), 4) if judged else None,
        calls=len(all_calls),
        cache_hits=sum(1 for c in all_calls if c.outcome == "cached"),
        cache_misses=sum(1 for c in all_calls if (c.error or "").startswith("cache miss")),
        prompt_tokens=sum(c.prompt_tokens or 0 for c in all_calls),
        completion_tokens=sum(c.completion_tokens or 0 for c in all_calls),
    )


def _latency(results: Sequence[ItemResult]) -> LatencyFigures:
    latencies = [r.latency_ms for r in results]
    return LatencyFigures(
        p50=round(_percentile(latencies, 0.5), 2),
        p95=round(_percentile(latencies, 0.95), 2),
        mean=round(statistics.fmean(latencies), 2) if latencies else None,
    )


def summarise(
    config: GraderConfig,
    items: Sequence[GoldItem],
    results: Sequence[ItemResult],
    pairs: Sequence[PairItem],
    pair_results: Sequence[tuple[ItemResult, ItemResult]],
    held_out: set[str],
) -> EvalSummary:
    by_id = {r.item_id: r for r in results}
    scored = [(it, by_id[it.id]) for it in items if by_id[it.id].score is not None]
    human = [it.human_score for it, _ in scored]
    pred = [float(r.score or 0.0) for _, r in scored]

    def split(name: str) -> ScopeFigures:
        rows = [(it, r) for it, r in scored if split_of(it.question_id, held_out) == name]
        return _scope([float(r.score or 0.0) for _, r in rows], [it.human_score for it, _ in rows])

    groups: dict[str, list[tuple[GoldItem, ItemResult]]] = defaultdict(list)
    for it, r in scored:
        groups[it.category].append((it, r))
    return EvalSummary(
        grader=config.name,
        kind=config.grader,
        config=config,
        n_items=len(items),
        n_scored=len(scored),
        unscored=len(items) - len(scored),
        overall=_scope(pred, human),
        by_split={s: split(s) for s in ("train", "test")},
        by_category={cat: _category(rows) for cat, rows in sorted(groups.items())},
        band_confusion=band_confusion(pred, human) if scored else {},
        invariance={kind: _invariance(kind, limit, pairs, pair_results) for kind, limit in INVARIANCE_LIMITS.items()},
        judge=_judge(config, results, pair_results),
        latency_ms=_latency(results),
        versions=results[0].result.versions if results else None,
    )


@dataclass
class EvalRun:
    figures: EvalSummary
    items: list[GoldItem]
    results: list[ItemResult]


def run_eval(
    config: GraderConfig,
    settings: Settings,
    embedding: EmbeddingGrader,
    bank: Bank,
    items: Sequence[GoldItem],
    pairs: Sequence[PairItem],
    held_out: set[str],
    *,
    advance: Callable[[], None] = lambda: None,
    concurrency: int = CONCURRENCY,
) -> EvalRun:
    scorer = Scorer(config, settings, embedding)
    inputs = [(it.id, it.question_id, grade_input(bank, it.question_id, it.answer)) for it in items]
    pair_inputs = []
    for p in pairs:
        pair_inputs.append((p.id + ":base", p.question_id, grade_input(bank, p.question_id, p.base)))
        pair_inputs.append((p.id + ":variant", p.question_id, grade_input(bank, p.question_id, p.variant)))

    async def go() -> tuple[list[ItemResult], list[ItemResult]]:
        try:
            a = await _score_all(scorer, inputs, advance, concurrency)
            b = await _score_all(scorer, pair_inputs, advance, concurrency)
        finally:
            if scorer.grader.judge is not None:
                await scorer.grader.judge.aclose()
        return a, b

    results, flat_pairs = asyncio.run(go())
    pair_results = list(zip(flat_pairs[0::2], flat_pairs[1::2], strict=True))
    figures = summarise(config, items, results, pairs, pair_results, held_out)
    return EvalRun(figures, list(items), results)


# ------------------------------------------------------------------------------ thresholds
def check_targets(figures: EvalSummary, thresholds: dict[str, Any]) -> list[str]:
    """Each target (``targets:`` of the grader's thresholds) not met yet: reported, never gated.

    Targets are where the grader should get to; a threshold is what it must not fall below."""
    spec = thresholds.get(figures.kind) or thresholds.get(figures.grader) or {}
    target = spec.get("targets")
    if not target:
        return []
    misses = check_thresholds(figures, {figures.kind: {"scopes": {}, "invariance": [], **target}})
    return [m for m in misses if "judge call" not in m]


def check_thresholds(figures: EvalSummary, thresholds: dict[str, Any]) -> list[str]:
    """Each figure that falls short of its threshold, in words (empty when all pass)."""
    spec = thresholds.get(figures.kind) or thresholds.get(figures.grader)
    if spec is None:
        return [f"no thresholds for grader {figures.grader!r} in {THRESHOLDS.name}"]
    failures = []
    for scope_name, scope in (spec.get("scopes") or {"overall": spec}).items():
        block = figures.scope(scope_name)
        for metric, minimum in (scope.get("min") or {}).items():
            value = block.metric(metric) if block else None
            if value is None or not value >= minimum:
                failures.append(f"{scope_name} {metric} {value!s:.6} is below the minimum {minimum}")
        for metric, maximum in (scope.get("max") or {}).items():
            value = block.metric(metric) if block else None
            if value is None or not value <= maximum:
                failures.append(f"{scope_name} {metric} {value!s:.6} is above the maximum {maximum}")
    for cat, limits in (spec.get("categories") or {}).items():
        category = figures.by_category.get(cat)
        if category is None:
            failures.append(f"category {cat}: no answers in the gold set")
            continue
        for metric, maximum in (limits.get("max") or {}).items():
            value = category.metric(metric)
            if not (float("inf") if value is None else value) <= maximum:
                failures.append(f"category {cat} {metric} {value} is above the maximum {maximum}")
        for metric, minimum in (limits.get("min") or {}).items():
            value = category.metric(metric)
            if not (float("-inf") if value is None else value) >= minimum:
                failures.append(f"category {cat} {metric} {value} is below the minimum {minimum}")
    gated = spec.get("invariance", True)
    for kind, inv in figures.invariance.items():
        if (gated is True or (isinstance(gated, list) and kind in gated)) and not inv.passed:
            failures.append(f"invariance {kind}: {len(inv.violations)} pair(s) beyond {inv.limit}")
    judge = figures.judge
    if judge.cache_misses:
        failures.append(
            f"{judge.cache_misses} judge call(s) missed the replay cache: the prompt, model or input "
            "changed since the cached run; rerun the judge eval against a live model to refresh it"
        )
    max_fallback = spec.get("max_fallback_rate")
    if max_fallback is not None and judge.fallback_rate is not None and judge.fallback_rate > max_fallback:
        failures.append(f"judge fallback rate {judge.fallback_rate} is above {max_fallback}")
    return failures


def load_thresholds(path: Path = THRESHOLDS) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


# ------------------------------------------------------------------------------ compare
def compare(a: EvalRun, b: EvalRun, n_boot: int = 1000) -> Comparison:
    """Figure differences B - A with 95% bootstrap intervals, resampling whole questions."""
    a_by = {r.item_id: r for r in a.results}
    b_by = {r.item_id: r for r in b.results}
    rows = [it for it in a.items if a_by[it.id].score is not None and b_by[it.id].score is not None]
    human = [it.human_score for it in rows]
    pa = [float(a_by[it.id].score or 0) for it in rows]
    pb = [float(b_by[it.id].score or 0) for it in rows]
    groups = [it.question_id for it in rows]
    diffs = {}
    for metric in ("pearson", "spearman", "qwk", "mae", "rmse", "band_accuracy"):
        point, lo, hi = bootstrap_difference(pa, pb, human, metric, n=n_boot, groups=groups)
        better = (point < 0) if metric in LOWER_IS_BETTER else (point > 0)
        significant = not (lo <= 0 <= hi)
        diffs[metric] = MetricComparison(
            a=a.figures.overall.metric(metric),
            b=b.figures.overall.metric(metric),
            diff=round(point, 4),
            ci95=[round(lo, 4), round(hi, 4)],
            verdict=("B better" if better else "B worse") if significant else "no clear difference",
        )
    return Comparison(a=a.figures.grader, b=b.figures.grader, n_common=len(rows), metrics=diffs)


def default_report_dir(name: str) -> Path:
    return REPO_ROOT / "evals" / "reports" / name


def write_json(path: Path, data: BaseModel | dict[str, Any]) -> None:
    """``data`` (a model through ``model_dump``) as indented JSON."""
    if isinstance(data, BaseModel):
        data = data.model_dump()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
