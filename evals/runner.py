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
from typing import Any, Literal

import yaml

from app.bank.loader import Bank
from app.config import REPO_ROOT, Settings
from app.grading.schemas import PASS_MARK, GradeInput, GradeResult, LLMCallRecord
from app.grading.service import MSG_NON_ANSWER, Grader
from evals.gold import GoldItem, PairItem, grade_input, split_of
from evals.metrics import LOWER_IS_BETTER, all_metrics, band_confusion, bootstrap_difference, mae

EVALS = Path(__file__).resolve().parent
CONFIGS = EVALS / "configs"
THRESHOLDS = EVALS / "thresholds.yaml"
JUDGE_REPLAY_CACHE = EVALS / "judge-cache"

GraderKind = Literal["embedding", "judge", "hybrid"]
INVARIANCE_LIMITS = {"paraphrase": 0.5, "padding": 0.3, "injection": 0.0}
"""Paraphrase within 0.5; padding raises the score by at most 0.3; injection never raises it."""


@dataclass
class GraderConfig:
    name: str
    grader: GraderKind = "embedding"
    judge_model: str | None = None
    prompt_version: str | None = None
    cache: Literal["replay", "readwrite", "off"] = "readwrite"
    base_url: str | None = None

    @classmethod
    def load(cls, spec: str, replay: bool = False) -> GraderConfig:
        """``embedding``, ``judge`` or ``hybrid`` (judge settings from the environment), or the
        name or path of a YAML file in ``evals/configs/``."""
        if spec in ("embedding", "judge", "hybrid"):
            config = cls(name=spec, grader=spec)  # type: ignore[arg-type]
        else:
            path = Path(spec) if Path(spec).suffix in (".yaml", ".yml") else CONFIGS / f"{spec}.yaml"
            if not path.is_file():
                known = sorted(p.stem for p in CONFIGS.glob("*.yaml")) if CONFIGS.is_dir() else []
                choices = ", ".join(["embedding", "judge", "hybrid", *known, "or a path to a .yaml configuration"])
                raise ValueError(f"unknown grader configuration {spec!r}; choose {choices}")
            config = cls(**yaml.safe_load(path.read_text(encoding="utf-8")))
        if replay:
            config.cache = "replay"
        return config


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

    def __init__(self, config: GraderConfig, settings: Settings, embedding: Any) -> None:
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
            overrides["embedding_cache_dir"] = JUDGE_REPLAY_CACHE
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
        if self.config.grader == "judge" and result.status_message == MSG_NON_ANSWER:
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


def summarise(
    config: GraderConfig,
    items: Sequence[GoldItem],
    results: Sequence[ItemResult],
    pairs: Sequence[PairItem],
    pair_results: Sequence[tuple[ItemResult, ItemResult]],
    held_out: set[str],
) -> dict[str, Any]:
    by_id = {r.item_id: r for r in results}
    scored = [(it, by_id[it.id]) for it in items if by_id[it.id].score is not None]
    human = [it.human_score for it, _ in scored]
    pred = [float(r.score) for _, r in scored if r.score is not None]

    def block(rows: Sequence[tuple[GoldItem, ItemResult]]) -> dict[str, Any]:
        h = [it.human_score for it, _ in rows]
        p = [float(r.score or 0.0) for _, r in rows]
        return {"n": len(rows), **all_metrics(p, h)} if len(rows) >= 2 else {"n": len(rows)}

    per_split = {
        s: block([(it, r) for it, r in scored if split_of(it.question_id, held_out) == s]) for s in ("train", "test")
    }
    per_cat: dict[str, Any] = {}
    groups: dict[str, list[tuple[GoldItem, ItemResult]]] = defaultdict(list)
    for it, r in scored:
        groups[it.category].append((it, r))
    for cat, rows in sorted(groups.items()):
        h = [it.human_score for it, _ in rows]
        p = [float(r.score or 0.0) for _, r in rows]
        per_cat[cat] = {
            "n": len(rows),
            "questions": len({it.question_id for it, _ in rows}),
            "mean_human": round(statistics.fmean(h), 3),
            "mean_pred": round(statistics.fmean(p), 3),
            "mae": round(mae(p, h), 3),
            "bias": round(statistics.fmean(p) - statistics.fmean(h), 3),
            "abs_bias": round(abs(statistics.fmean(p) - statistics.fmean(h)), 3),
            "pass_rate": round(sum(v >= PASS_MARK for v in p) / len(p), 3),
        }

    invariance: dict[str, Any] = {}
    for kind, limit in INVARIANCE_LIMITS.items():
        diffs = [
            (pair.id, float(v.score) - float(b.score))
            for pair, (b, v) in zip(pairs, pair_results, strict=True)
            if pair.kind == kind and b.score is not None and v.score is not None
        ]
        if kind == "paraphrase":
            violations = [(i, d) for i, d in diffs if abs(d) > limit]
        else:
            violations = [(i, d) for i, d in diffs if d > limit + 1e-9]
        invariance[kind] = {
            "n": len(diffs),
            "limit": limit,
            "max_raise": round(max((d for _, d in diffs), default=0.0), 3),
            "mean_abs_diff": round(statistics.fmean([abs(d) for _, d in diffs]), 3) if diffs else None,
            "violations": [{"id": i, "diff": round(d, 3)} for i, d in violations],
            "passed": not violations,
        }

    all_calls = [c for r in results for c in r.calls] + [c for b, v in pair_results for c in (*b.calls, *v.calls)]
    judged = [r for r in results if config.grader != "embedding" and r.result.status_message != MSG_NON_ANSWER]
    failed = [r for r in judged if r.result.judge_score is None]
    parse_failures = [r for r in judged if "judge_parse_error" in r.result.flags]
    cache_misses = [c for c in all_calls if (c.error or "").startswith("cache miss")]
    latencies = [r.latency_ms for r in results]
    return {
        "grader": config.name,
        "kind": config.grader,
        "config": config.__dict__,
        "n_items": len(items),
        "n_scored": len(scored),
        "unscored": len(items) - len(scored),
        "overall": {"n": len(scored), **all_metrics(pred, human)} if len(scored) >= 2 else {"n": len(scored)},
        "by_split": per_split,
        "by_category": per_cat,
        "band_confusion": band_confusion(pred, human) if scored else {},
        "invariance": invariance,
        "judge": {
            "items_judged": len(judged),
            "fallback_rate": round(len(failed) / len(judged), 4) if judged else None,
            "parse_failure_rate": round(len(parse_failures) / len(judged), 4) if judged else None,
            "calls": len(all_calls),
            "cache_hits": sum(1 for c in all_calls if c.outcome == "cached"),
            "cache_misses": len(cache_misses),
            "prompt_tokens": sum(c.prompt_tokens or 0 for c in all_calls),
            "completion_tokens": sum(c.completion_tokens or 0 for c in all_calls),
        },
        "latency_ms": {
            "p50": round(_percentile(latencies, 0.5), 2),
            "p95": round(_percentile(latencies, 0.95), 2),
            "mean": round(statistics.fmean(latencies), 2) if latencies else None,
        },
        "versions": results[0].result.versions.model_dump() if results and results[0].result.versions else None,
    }


@dataclass
class EvalRun:
    figures: dict[str, Any]
    items: list[GoldItem]
    results: list[ItemResult]


def run_eval(
    config: GraderConfig,
    settings: Settings,
    embedding: Any,
    bank: Bank,
    items: Sequence[GoldItem],
    pairs: Sequence[PairItem],
    held_out: set[str],
    *,
    advance: Callable[[], None] = lambda: None,
    concurrency: int = 16,
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
def check_targets(figures: dict[str, Any], thresholds: dict[str, Any]) -> list[str]:
    """Each target (``targets:`` of the grader's thresholds) not met yet: reported, never gated.

    Targets are where the grader should get to; a threshold is what it must not fall below."""
    spec = thresholds.get(figures["kind"]) or thresholds.get(figures["grader"]) or {}
    target = spec.get("targets")
    if not target:
        return []
    misses = check_thresholds(figures, {figures["kind"]: {"scopes": {}, "invariance": [], **target}})
    return [m for m in misses if "judge call" not in m]


def check_thresholds(figures: dict[str, Any], thresholds: dict[str, Any]) -> list[str]:
    """Each figure that falls short of its threshold, in words (empty when all pass)."""
    spec = thresholds.get(figures["kind"]) or thresholds.get(figures["grader"])
    if spec is None:
        return [f"no thresholds for grader {figures['grader']!r} in {THRESHOLDS.name}"]
    failures = []
    for scope_name, scope in (spec.get("scopes") or {"overall": spec}).items():
        block = figures["overall"] if scope_name == "overall" else figures["by_split"].get(scope_name, {})
        for metric, minimum in (scope.get("min") or {}).items():
            value = block.get(metric)
            if value is None or not value >= minimum:
                failures.append(f"{scope_name} {metric} {value!s:.6} is below the minimum {minimum}")
        for metric, maximum in (scope.get("max") or {}).items():
            value = block.get(metric)
            if value is None or not value <= maximum:
                failures.append(f"{scope_name} {metric} {value!s:.6} is above the maximum {maximum}")
    for cat, limits in (spec.get("categories") or {}).items():
        block = figures["by_category"].get(cat)
        if not block:
            failures.append(f"category {cat}: no answers in the gold set")
            continue
        for metric, maximum in (limits.get("max") or {}).items():
            if not block.get(metric, float("inf")) <= maximum:
                failures.append(f"category {cat} {metric} {block.get(metric)} is above the maximum {maximum}")
        for metric, minimum in (limits.get("min") or {}).items():
            if not block.get(metric, float("-inf")) >= minimum:
                failures.append(f"category {cat} {metric} {block.get(metric)} is below the minimum {minimum}")
    gated = spec.get("invariance", True)
    for kind, inv in figures["invariance"].items():
        if (gated is True or (isinstance(gated, list) and kind in gated)) and not inv["passed"]:
            failures.append(f"invariance {kind}: {len(inv['violations'])} pair(s) beyond {inv['limit']}")
    judge = figures["judge"]
    if judge["cache_misses"]:
        failures.append(
            f"{judge['cache_misses']} judge call(s) missed the replay cache: the prompt, model or input "
            "changed since the cached run; rerun the judge eval against a live model to refresh it"
        )
    max_fallback = spec.get("max_fallback_rate")
    if max_fallback is not None and judge["fallback_rate"] is not None and judge["fallback_rate"] > max_fallback:
        failures.append(f"judge fallback rate {judge['fallback_rate']} is above {max_fallback}")
    return failures


def load_thresholds(path: Path = THRESHOLDS) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


# ------------------------------------------------------------------------------ compare
def compare(a: EvalRun, b: EvalRun, n_boot: int = 1000) -> dict[str, Any]:
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
        diffs[metric] = {
            "a": a.figures["overall"].get(metric),
            "b": b.figures["overall"].get(metric),
            "diff": round(point, 4),
            "ci95": [round(lo, 4), round(hi, 4)],
            "verdict": ("B better" if better else "B worse") if significant else "no clear difference",
        }
    return {"a": a.figures["grader"], "b": b.figures["grader"], "n_common": len(rows), "metrics": diffs}


def default_report_dir(name: str) -> Path:
    return REPO_ROOT / "evals" / "reports" / name


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
