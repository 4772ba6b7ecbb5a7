"""Statistics over rollouts: bootstrap confidence intervals and paired model comparisons.

Both take one value per rollout (e.g. a metric averaged over the horizon). NaN values are
failures, not noise: they are refused with an error rather than silently dropped, so the
caller decides how a failure counts (see `physground.metrics.scores`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from physground.errors import ValidationError

PAIRED_METHODS = ("wilcoxon", "ttest")


def _finite_1d(name: str, values: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValidationError(f"{name} has shape {list(array.shape)}, expected one value per "
                              "rollout [N]")
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValidationError(
            f"{name} has {int(bad.sum())} NaN/Inf values (failures) of {array.size}; "
            "decide how failures count before computing statistics"
        )
    return array


@dataclass(frozen=True)
class BootstrapCI:
    """A bootstrap confidence interval of the mean; unpacks as ``(low, high)``."""

    estimate: float
    low: float
    high: float
    confidence: float
    n: int
    method: str

    def __iter__(self) -> Iterator[float]:
        return iter((self.low, self.high))


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
    method: str = "BCa",
) -> BootstrapCI:
    """Bootstrap CI of the mean of ``values`` [N] (``scipy.stats.bootstrap``).

    BCa by default; falls back to the percentile interval when BCa is degenerate (all
    resamples equal, e.g. constant values). Deterministic for a given ``seed``.
    """
    if not 0.0 < confidence < 1.0:
        raise ValidationError(f"confidence = {confidence}, expected in (0, 1)")
    data = _finite_1d("values", values)
    if data.size < 2:
        raise ValidationError(f"a bootstrap CI needs >= 2 values, got {data.size}")
    estimate = float(data.mean())
    if np.ptp(data) == 0.0:
        return BootstrapCI(estimate, estimate, estimate, confidence, data.size, "constant")
    rng = np.random.default_rng(seed)
    with np.errstate(all="ignore"):
        result = stats.bootstrap((data,), np.mean, confidence_level=confidence,
                                 n_resamples=n_resamples, method=method, random_state=rng,
                                 vectorized=True)
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if not (np.isfinite(low) and np.isfinite(high)) and method != "percentile":
        return bootstrap_ci(data, confidence, n_resamples, seed, "percentile")
    return BootstrapCI(estimate, low, high, confidence, data.size, method)


@dataclass(frozen=True)
class PairedTestResult:
    """Outcome of a paired comparison of two models on the same rollouts.

    ``mean_difference`` is mean(a - b); ``pvalue`` is two-sided. ``ci`` is a bootstrap CI
    of the mean difference.
    """

    method: str
    statistic: float
    pvalue: float
    mean_difference: float
    n: int
    ci: BootstrapCI | None

    def significant(self, alpha: float = 0.05) -> bool:
        return self.pvalue < alpha


def paired_test(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    method: str = "wilcoxon",
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedTestResult:
    """Two-sided paired test of models A and B scored on the same N rollouts.

    ``wilcoxon``: Wilcoxon signed-rank test on the differences (no normality assumption;
    zero differences handled by the ``zsplit`` rule); ``ttest``: paired Student t-test.
    Identical inputs give p = 1.
    """
    if method not in PAIRED_METHODS:
        raise ValidationError(f"paired test method '{method}', expected one of {PAIRED_METHODS}")
    x, y = _finite_1d("a", a), _finite_1d("b", b)
    if x.shape != y.shape:
        raise ValidationError(
            f"paired values need the same rollouts: a has {x.size}, b has {y.size}"
        )
    if x.size < 2:
        raise ValidationError(f"a paired test needs >= 2 rollouts, got {x.size}")
    diff = x - y
    if np.all(diff == 0):
        statistic, pvalue = 0.0, 1.0
    elif method == "wilcoxon":
        res = stats.wilcoxon(x, y, zero_method="zsplit", alternative="two-sided")
        statistic, pvalue = float(res.statistic), float(res.pvalue)
    else:
        res = stats.ttest_rel(x, y)
        statistic, pvalue = float(res.statistic), float(res.pvalue)
    ci = bootstrap_ci(diff, confidence=confidence, seed=seed)
    return PairedTestResult(method, statistic, pvalue, float(diff.mean()), x.size, ci)


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1): rejecting
    where ``adjusted < alpha`` controls the family-wise error rate at ``alpha``."""
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise ValidationError(f"pvalues has shape {list(p.shape)}, expected [N]")
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def min_pvalue(n: int, method: str = "wilcoxon") -> float:
    """The smallest two-sided p-value a paired test of ``n`` pairs can reach: ``2 / 2^n``
    for the exact Wilcoxon signed-rank test (all differences of one sign), 0 for the
    t-test with n >= 2 (none below 2 pairs)."""
    if method not in PAIRED_METHODS:
        raise ValidationError(f"paired test method '{method}', expected one of {PAIRED_METHODS}")
    if n < 2:
        return 1.0
    return float(2.0 ** (1 - n)) if method == "wilcoxon" else 0.0
