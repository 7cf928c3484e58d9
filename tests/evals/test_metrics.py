"""The agreement metrics on small cases computed by hand."""

from __future__ import annotations

import math

import pytest

from evals.metrics import (
    band_accuracy,
    band_confusion,
    bootstrap_difference,
    mae,
    pearson,
    qwk,
    rmse,
    spearman,
)


def test_perfect_and_inverse_agreement() -> None:
    human = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert pearson(human, human) == pytest.approx(1.0)
    assert spearman(human, human) == pytest.approx(1.0)
    assert qwk(human, human) == pytest.approx(1.0)
    assert mae(human, human) == 0.0 and band_accuracy(human, human) == 1.0
    assert pearson(human[::-1], human) == pytest.approx(-1.0)


def test_mae_rmse_by_hand() -> None:
    # errors 1, -1, 2 -> MAE 4/3, RMSE sqrt(6/3)
    assert mae([1.0, 2.0, 5.0], [0.0, 3.0, 3.0]) == pytest.approx(4 / 3)
    assert rmse([1.0, 2.0, 5.0], [0.0, 3.0, 3.0]) == pytest.approx(math.sqrt(2))


def test_pearson_by_hand() -> None:
    # x = 1,2,3 ; y = 1,3,2: cov = 0.5 (sample), sd = 1 each -> r = 0.5
    assert pearson([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)


def test_qwk_by_hand() -> None:
    # Two items, human 0 and 2, predicted 1 and 2. Labels 0..5, weights (i-j)^2/25.
    # Observed disagreement: one item off by 1 -> sum w*O = (1/25)*1 = 0.04 (over n=2 -> 0.02).
    # Expected: human marginals {0:1, 2:1}, pred {1:1, 2:1}; E = outer/n:
    # pairs (0,1),(0,2),(2,1),(2,2) each 0.5 -> weights 1/25, 4/25, 1/25, 0 -> sum 0.5*6/25 = 0.12 (/2 -> 0.06)
    # kappa = 1 - 0.02/0.06 = 2/3
    assert qwk([1.0, 2.0], [0.0, 2.0]) == pytest.approx(2 / 3)
    assert qwk([0.4, 2.4], [0.0, 2.0]) == pytest.approx(1.0)  # rounding to whole points first


def test_bands() -> None:
    pred, human = [3.0, 2.9, 4.0, 1.0], [3.5, 3.0, 2.0, 0.0]
    assert band_accuracy(pred, human) == pytest.approx(0.5)
    assert band_confusion(pred, human) == {"pass": {"pass": 1, "fail": 1}, "fail": {"pass": 1, "fail": 1}}


def test_bootstrap_difference_sees_a_real_improvement() -> None:
    human = [float(i % 6) for i in range(60)]
    noisy = [h + (2.0 if i % 2 else -2.0) for i, h in enumerate(human)]
    point, _lo, hi = bootstrap_difference(noisy, human, human, "mae", n=300)
    assert point == pytest.approx(-2.0) and hi < 0  # B (perfect) has lower error, interval excludes 0
    p2, lo2, hi2 = bootstrap_difference(human, human, human, "pearson", n=50, groups=[str(i % 10) for i in range(60)])
    assert p2 == 0.0 and lo2 == 0.0 and hi2 == 0.0
