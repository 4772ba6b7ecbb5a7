"""Bootstrap confidence intervals and paired tests on constructed samples."""

from __future__ import annotations

import numpy as np
import pytest

from physground.errors import ValidationError
from physground.metrics.stats import bootstrap_ci, paired_test


def test_bootstrap_ci_covers_the_mean_and_shrinks_with_n() -> None:
    rng = np.random.default_rng(0)
    small, large = rng.normal(2.0, 1.0, 50), rng.normal(2.0, 1.0, 800)
    ci_small, ci_large = bootstrap_ci(small, seed=1), bootstrap_ci(large, seed=1)
    for ci, data in ((ci_small, small), (ci_large, large)):
        assert ci.low < data.mean() < ci.high
        # the normal-theory half width 1.96 s / sqrt(n) is the known answer for a mean
        half = 1.96 * data.std(ddof=1) / np.sqrt(data.size)
        assert (ci.high - ci.low) / 2 == pytest.approx(half, rel=0.2)
    assert ci_large.high - ci_large.low < ci_small.high - ci_small.low
    low, high = ci_small  # unpacks as (low, high)
    assert (low, high) == (ci_small.low, ci_small.high)


def test_bootstrap_is_deterministic_and_handles_constants() -> None:
    data = np.arange(20.0)
    assert bootstrap_ci(data, seed=3) == bootstrap_ci(data, seed=3)
    ci = bootstrap_ci(np.full(10, 4.0))
    assert (ci.low, ci.estimate, ci.high) == (4.0, 4.0, 4.0)


def test_nan_values_are_refused_not_dropped() -> None:
    with pytest.raises(ValidationError, match="1 NaN/Inf"):
        bootstrap_ci([1.0, np.nan, 2.0])
    with pytest.raises(ValidationError, match="same rollouts"):
        paired_test([1.0, 2.0, 3.0], [1.0, 2.0])


@pytest.mark.parametrize("method", ["wilcoxon", "ttest"])
def test_paired_test_detects_a_shift_and_not_noise(method: str) -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(0.0, 5.0, 60)  # large between-rollout spread, removed by pairing
    shifted = base + 0.5 + rng.normal(0.0, 0.1, 60)
    result = paired_test(shifted, base, method=method)
    assert result.significant() and result.pvalue < 1e-6
    assert result.mean_difference == pytest.approx(0.5, abs=0.05)
    assert result.ci.low < 0.5 < result.ci.high
    noise = paired_test(base + rng.normal(0.0, 0.1, 60), base, method=method)
    assert noise.pvalue > 0.01
    same = paired_test(base, base, method=method)
    assert same.pvalue == 1.0 and same.mean_difference == 0.0
