"""The figures of a gold-set eval run and of a comparison of two runs, as Pydantic models.

:class:`EvalSummary` is what ``evals.runner.summarise`` measures; the report writer, the
threshold gate and the command line read it, and ``figures.json`` is its ``model_dump``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer
from pydantic.dataclasses import dataclass

from app.grading.schemas import GraderVersions

GraderKind = Literal["embedding", "judge", "hybrid"]
CacheMode = Literal["replay", "readwrite", "off"]
GRADER_KINDS: tuple[GraderKind, ...] = ("embedding", "judge", "hybrid")


@dataclass(config=ConfigDict(extra="forbid"))
class GraderConfig:
    """One grader configuration to evaluate."""

    name: str
    grader: GraderKind = "embedding"
    judge_model: str | None = None
    prompt_version: str | None = None
    cache: CacheMode = "readwrite"
    """How the judge uses its reply cache (``settings.cache_dir``): ``replay`` reads it only."""
    base_url: str | None = None

    @classmethod
    def load(cls, spec: str, replay: bool = False) -> GraderConfig:
        """``embedding``, ``judge`` or ``hybrid`` (judge settings from the environment), or the
        path of a YAML file holding these fields."""
        for kind in GRADER_KINDS:
            if spec == kind:
                config = cls(name=spec, grader=kind)
                break
        else:
            path = Path(spec)
            if path.suffix not in (".yaml", ".yml") or not path.is_file():
                choices = ", ".join([*GRADER_KINDS, "or a path to a .yaml configuration"])
                raise ValueError(f"unknown grader configuration {spec!r}; choose {choices}")
            config = cls(**yaml.safe_load(path.read_text(encoding="utf-8")))
        if replay:
            config.cache = "replay"
        return config


class _Figures(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScopeFigures(_Figures):
    """Agreement with the human scores over one scope (all answers, the train or test split).

    With fewer than two scored answers there are no agreement figures, only ``n``; the JSON
    then holds ``n`` alone."""

    n: int
    pearson: float | None = None
    spearman: float | None = None
    qwk: float | None = None
    mae: float | None = None
    rmse: float | None = None
    band_accuracy: float | None = None

    @model_serializer(mode="wrap")
    def _only_measured(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if k == "n" or v is not None}

    def metric(self, name: str) -> float | None:
        """A figure by name, as thresholds.yaml names it (``None`` when not measured or unknown)."""
        value: float | None = getattr(self, name) if name in type(self).model_fields else None
        return value


class CategoryFigures(_Figures):
    """The answers of one gold-set category (e.g. ``swapped-facts``)."""

    n: int
    questions: int
    mean_human: float
    mean_pred: float
    mae: float
    bias: float
    """Mean predicted minus mean human score."""
    abs_bias: float
    pass_rate: float
    """Share of predicted scores at or above the pass mark."""

    def metric(self, name: str) -> float | None:
        """A figure by name, as thresholds.yaml names it (``None`` when unknown)."""
        value: float | None = getattr(self, name) if name in type(self).model_fields else None
        return value


class Violation(_Figures):
    id: str
    diff: float


class InvarianceFigures(_Figures):
    """Score changes between the base and variant answers of one kind of invariance pair."""

    n: int
    limit: float
    max_raise: float
    mean_abs_diff: float | None
    violations: list[Violation]
    passed: bool


class JudgeFigures(_Figures):
    """The LLM judge's share of the run: fallbacks, parse failures, calls, cache, tokens."""

    items_judged: int = 0
    fallback_rate: float | None = None
    """Share of judged answers the judge failed on (graded by the embedding grader alone)."""
    parse_failure_rate: float | None = None
    calls: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    """Calls that found no recorded reply in replay mode."""
    prompt_tokens: int = 0
    completion_tokens: int = 0


class LatencyFigures(_Figures):
    """Milliseconds per grading."""

    p50: float
    p95: float
    mean: float | None


class EvalSummary(_Figures):
    """Everything one grader configuration measured on the gold set."""

    grader: str
    """The configuration's name."""
    kind: GraderKind
    config: GraderConfig
    n_items: int
    n_scored: int
    unscored: int
    overall: ScopeFigures
    by_split: dict[str, ScopeFigures]
    by_category: dict[str, CategoryFigures]
    band_confusion: dict[str, dict[str, int]]
    """``{human band: {predicted band: count}}``."""
    invariance: dict[str, InvarianceFigures]
    judge: JudgeFigures
    latency_ms: LatencyFigures
    versions: GraderVersions | None = None

    def scope(self, name: str) -> ScopeFigures | None:
        """``overall`` or a split's figures (``None`` for a split with no answers)."""
        return self.overall if name == "overall" else self.by_split.get(name)


class MetricComparison(_Figures):
    """One figure of run A and run B, B - A and its 95% bootstrap interval."""

    a: float | None
    b: float | None
    diff: float
    ci95: list[float]
    verdict: Literal["B better", "B worse", "no clear difference"]


class Comparison(_Figures):
    """Run B against run A on the answers both scored."""

    a: str
    b: str
    n_common: int
    metrics: dict[str, MetricComparison]
