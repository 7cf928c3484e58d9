"""Agreement figures between grader scores and human scores (0-5 scale)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import cohen_kappa_score

from app.rubric import PASS_MARK


def _arrays(pred: Sequence[float], human: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    p, h = np.asarray(pred, dtype=float), np.asarray(human, dtype=float)
    if p.shape != h.shape or p.ndim != 1:
        raise ValueError("predictions and human scores must be equal-length sequences")
    return p, h


def pearson(pred: Sequence[float], human: Sequence[float]) -> float:
    p, h = _arrays(pred, human)
    if len(p) < 2 or p.std() == 0 or h.std() == 0:
        return float("nan")
    return float(pearsonr(p, h).statistic)


def spearman(pred: Sequence[float], human: Sequence[float]) -> float:
    p, h = _arrays(pred, human)
    if len(p) < 2 or p.std() == 0 or h.std() == 0:
        return float("nan")
    return float(spearmanr(p, h).statistic)


def mae(pred: Sequence[float], human: Sequence[float]) -> float:
    p, h = _arrays(pred, human)
    return float(np.abs(p - h).mean())


def rmse(pred: Sequence[float], human: Sequence[float]) -> float:
    p, h = _arrays(pred, human)
    return float(np.sqrt(((p - h) ** 2).mean()))


def qwk(pred: Sequence[float], human: Sequence[float]) -> float:
    """Quadratic weighted kappa on scores rounded to whole points 0-5."""
    p, h = _arrays(pred, human)
    pr = np.clip(np.floor(p + 0.5), 0, 5).astype(int)
    hr = np.clip(np.floor(h + 0.5), 0, 5).astype(int)
    if len(set(pr) | set(hr)) < 2:
        return float("nan")
    return float(cohen_kappa_score(hr, pr, weights="quadratic", labels=list(range(6))))


def band(score: float) -> str:
    return "pass" if score >= PASS_MARK else "fail"


def band_accuracy(pred: Sequence[float], human: Sequence[float]) -> float:
    p, h = _arrays(pred, human)
    return float(np.mean((p >= PASS_MARK) == (h >= PASS_MARK)))


def band_confusion(pred: Sequence[float], human: Sequence[float]) -> dict[str, dict[str, int]]:
    """Counts as ``{human_band: {predicted_band: n}}``."""
    p, h = _arrays(pred, human)
    out = {hb: {pb: 0 for pb in ("pass", "fail")} for hb in ("pass", "fail")}
    for a, b in zip(p, h, strict=True):
        out[band(b)][band(a)] += 1
    return out


METRICS: dict[str, Callable[[Sequence[float], Sequence[float]], float]] = {
    "pearson": pearson,
    "spearman": spearman,
    "qwk": qwk,
    "mae": mae,
    "rmse": rmse,
    "band_accuracy": band_accuracy,
}
LOWER_IS_BETTER = {"mae", "rmse"}


def all_metrics(pred: Sequence[float], human: Sequence[float]) -> dict[str, float]:
    return {name: fn(pred, human) for name, fn in METRICS.items()}


def bootstrap_difference(
    pred_a: Sequence[float],
    pred_b: Sequence[float],
    human: Sequence[float],
    metric: str,
    *,
    n: int = 1000,
    seed: int = 0,
    groups: Sequence[str] | None = None,
) -> tuple[float, float, float]:
    """``metric(B) - metric(A)`` with a 95% bootstrap interval (paired resampling).

    With ``groups`` (e.g. question ids) whole groups are resampled, since answers to the same
    question are not independent.
    """
    a, h = _arrays(pred_a, human)
    b, _ = _arrays(pred_b, human)
    fn: Callable[[Any, Any], float] = METRICS[metric]
    point = fn(b, h) - fn(a, h)
    rng = np.random.default_rng(seed)
    if groups is not None:
        keys = sorted(set(groups))
        index = {k: np.flatnonzero(np.asarray(groups) == k) for k in keys}
    diffs = []
    for _ in range(n):
        if groups is not None:
            chosen = rng.choice(len(keys), size=len(keys), replace=True)
            idx = np.concatenate([index[keys[c]] for c in chosen])
        else:
            idx = rng.integers(0, len(h), size=len(h))
        d = fn(b[idx], h[idx]) - fn(a[idx], h[idx])
        if not np.isnan(d):
            diffs.append(d)
    if not diffs:
        return point, float("nan"), float("nan")
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return float(point), float(lo), float(hi)
