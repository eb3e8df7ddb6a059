"""Confidence intervals: Wilson for rates, the bootstrap for means and paired differences."""

import math

import numpy as np
import pytest

from course_lib.eval.intervals import clustered_rate_interval, mean_interval, paired_difference, proportion_interval, rate_interval


def _wilson(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval written out (Wilson 1927)."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize("successes, n", [(6, 8), (0, 40), (40, 40), (27, 48), (1, 3)])
def test_proportion_interval_is_the_wilson_interval(successes: int, n: int) -> None:
    estimate = proportion_interval(successes, n)
    low, high = _wilson(successes, n)
    assert estimate.value == successes / n and estimate.n == n
    assert estimate.low == pytest.approx(max(low, 0.0), abs=1e-9)
    assert estimate.high == pytest.approx(min(high, 1.0), abs=1e-9)


def test_six_of_eight_is_compatible_with_a_coin_but_thirty_of_forty_is_not() -> None:
    assert not proportion_interval(6, 8).excludes(0.5)
    assert proportion_interval(30, 40).excludes(0.5)
    assert proportion_interval(6, 8).as_percent() == "75% [41%, 93%] (n=8)"


def test_rate_interval_counts_true_outcomes() -> None:
    assert rate_interval([True, False, True, True]) == proportion_interval(3, 4)


@pytest.mark.parametrize("successes, n", [(-1, 4), (5, 4), (0, 0)])
def test_impossible_counts_are_refused(successes: int, n: int) -> None:
    with pytest.raises(ValueError, match="successes <= n"):
        proportion_interval(successes, n)


def test_mean_interval_brackets_the_mean_and_narrows_with_more_data() -> None:
    rng = np.random.default_rng(0)
    small, large = rng.normal(0.5, 0.2, 20), rng.normal(0.5, 0.2, 2000)
    few, many = mean_interval(small), mean_interval(large)
    assert few.low < few.value < few.high and many.low < many.value < many.high
    assert (many.high - many.low) < (few.high - few.low) / 5
    # The bootstrap agrees with the normal interval 1.96·s/√n on a large sample.
    half = 1.96 * large.std(ddof=1) / math.sqrt(len(large))
    assert (many.high - many.low) / 2 == pytest.approx(half, rel=0.1)


def test_mean_interval_is_seeded_and_handles_constant_scores() -> None:
    values = [0.2, 0.9, 0.4, 0.7, 0.1]
    assert mean_interval(values, seed=3) == mean_interval(values, seed=3)
    assert mean_interval([1.0, 1.0, 1.0]) == mean_interval([1.0, 1.0]).__class__(1.0, 1.0, 1.0, 3)
    with pytest.raises(ValueError, match="at least two"):
        mean_interval([0.5])


def test_pairing_removes_the_shared_difficulty_of_the_questions() -> None:
    rng = np.random.default_rng(1)
    difficulty = rng.normal(0, 1, 200)
    first, second = difficulty + 0.1, difficulty + rng.normal(0, 0.05, 200)
    paired = paired_difference(first, second)
    assert paired.low > 0, "the paired interval sees the 0.1 gap"
    unpaired = mean_interval(first).low - mean_interval(second).high
    assert unpaired < 0, "separate intervals overlap: they cannot"
    with pytest.raises(ValueError, match="same examples"):
        paired_difference([1.0, 2.0], [1.0])


def test_clusters_of_one_give_about_the_wilson_interval() -> None:
    outcomes = [True] * 30 + [False] * 18
    clustered = clustered_rate_interval(outcomes, [str(i) for i in range(48)])
    wilson = rate_interval(outcomes)
    assert clustered.value == wilson.value and clustered.n == 48
    assert clustered.low == pytest.approx(wilson.low, abs=0.03) and clustered.high == pytest.approx(wilson.high, abs=0.03)


def test_questions_that_stand_or_fall_together_widen_the_interval() -> None:
    outcomes = [True] * 30 + [False] * 18
    pairs = clustered_rate_interval(outcomes, [str(i // 2) for i in range(48)])  # 24 facts, asked twice
    singles = clustered_rate_interval(outcomes, [str(i) for i in range(48)])
    assert (pairs.high - pairs.low) > 1.2 * (singles.high - singles.low)
    assert clustered_rate_interval(outcomes, [str(i // 2) for i in range(48)], seed=5) == \
        clustered_rate_interval(outcomes, [str(i // 2) for i in range(48)], seed=5)
    with pytest.raises(ValueError, match="one cluster per outcome"):
        clustered_rate_interval(outcomes, ["a"])
