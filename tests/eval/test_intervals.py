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


def test_mcnemar_counts_only_disagreements_and_is_the_exact_binomial_test() -> None:
    from course_lib.eval.intervals import mcnemar_test

    agree = [True] * 30 + [False] * 5
    first = agree + [True] * 10 + [False] * 2
    second = agree + [False] * 10 + [True] * 2
    result = mcnemar_test(first, second)
    assert (result.first_only, result.second_only) == (10, 2)
    assert result.p_value == pytest.approx(2 * (1 + 12 + 66) / 2**12)  # 2 · P(X ≤ 2), X ~ Binomial(12, 1/2)
    assert mcnemar_test(agree, agree).p_value == 1.0
    with pytest.raises(ValueError, match="same examples: 3 against 2"):
        mcnemar_test([True] * 3, [True] * 2)


def test_examples_needed_matches_the_textbook_value_and_gives_the_promised_power() -> None:
    from scipy import stats

    from course_lib.eval.intervals import examples_needed

    n = examples_needed(0.5, 0.6)
    assert n == 388  # Fleiss' formula for 50% vs 60%, α = 0.05, power 0.8, no continuity correction
    assert examples_needed(0.5, 0.7) < n < examples_needed(0.5, 0.55)
    rng = np.random.default_rng(0)
    first, second = rng.binomial(n, 0.5, size=4000) / n, rng.binomial(n, 0.6, size=4000) / n
    pooled = (first + second) / 2
    z = (second - first) / np.sqrt(2 * pooled * (1 - pooled) / n)
    power = np.mean(np.abs(z) > stats.norm.ppf(0.975))
    assert power == pytest.approx(0.8, abs=0.03)


@pytest.mark.parametrize("rates, message", [((0.5, 0.5), "equal"), ((0.0, 0.5), "rate_first"), ((0.5, 1.2), "rate_second")])
def test_examples_needed_refuses_impossible_rates(rates: tuple[float, float], message: str) -> None:
    from course_lib.eval.intervals import examples_needed

    with pytest.raises(ValueError, match=message):
        examples_needed(*rates)


def test_the_bootstrap_interval_of_a_rate_matches_the_textbook_interval_at_large_n() -> None:
    values = [1.0] * 100 + [0.0] * 300  # a rate of 25% on 400 examples: 0.25 ± 1.96·√(0.25·0.75/400) = ±0.042
    estimate = mean_interval(values)
    half_width = 1.959963984540054 * math.sqrt(0.25 * 0.75 / 400)
    assert estimate.value == 0.25
    assert estimate.low == pytest.approx(0.25 - half_width, abs=0.008)
    assert estimate.high == pytest.approx(0.25 + half_width, abs=0.008)


def test_clusters_that_all_agree_get_the_wilson_interval_over_the_clusters() -> None:
    estimate = clustered_rate_interval([True] * 6, ["a", "a", "b", "b", "c", "c"])
    wilson = proportion_interval(3, 3)
    assert (estimate.value, estimate.low, estimate.high, estimate.n) == (1.0, wilson.low, wilson.high, 6)
    assert clustered_rate_interval([False] * 4, ["a", "a", "b", "b"]).high == proportion_interval(0, 2).high
