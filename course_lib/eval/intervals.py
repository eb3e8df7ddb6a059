"""How sure a score is: confidence intervals for rates and means, and paired differences.

Every headline the course prints comes with n and an interval: 6 right out of
8 is "75%" but could as well be 40% or 95%. Proportions use the Wilson score
interval (good at small n and near 0% or 100%, unlike the normal
approximation); means and paired differences use the percentile bootstrap,
which assumes nothing about the shape of the scores. Both come from SciPy.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class Estimate:
    """A score, its confidence interval and the number of examples behind it."""

    value: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{self.value:.2f} [{self.low:.2f}, {self.high:.2f}] (n={self.n})"

    def as_percent(self) -> str:
        """'75% [41%, 93%] (n=8)': the reading for rates."""
        return f"{self.value:.0%} [{self.low:.0%}, {self.high:.0%}] (n={self.n})"

    def excludes(self, value: float) -> bool:
        """True when `value` lies outside the interval (the data rule it out at this confidence)."""
        return not self.low <= value <= self.high


def proportion_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> Estimate:
    """The rate `successes / n` with its Wilson score interval."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, got successes={successes}, n={n}")
    interval = stats.binomtest(int(successes), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return Estimate(successes / n, float(interval.low), float(interval.high), int(n))


def rate_interval(outcomes: Sequence[bool], confidence: float = CONFIDENCE) -> Estimate:
    """The share of true outcomes (one per example) with its Wilson interval."""
    return proportion_interval(int(sum(bool(o) for o in outcomes)), len(outcomes), confidence)


def clustered_rate_interval(outcomes: Sequence[bool], clusters: Sequence[str], confidence: float = CONFIDENCE,
                            seed: int = 0) -> Estimate:
    """The share of true outcomes with a bootstrap over clusters (e.g. several questions about one fact).

    Questions about the same fact are not independent: a model that knows the
    price answers both phrasings. Resampling whole clusters keeps that, so the
    interval is as wide as the number of facts, not of questions, warrants.
    When every outcome is the same the bootstrap has no spread to resample, and
    the Wilson interval over the clusters is returned instead.
    """
    if len(outcomes) != len(clusters) or not outcomes:
        raise ValueError(f"need one cluster per outcome, got {len(outcomes)} outcomes and {len(clusters)} clusters")
    names = sorted(set(clusters))
    if len({bool(o) for o in outcomes}) == 1:
        # Every outcome alike: resampling has no spread to show. Wilson over the independent clusters.
        interval = proportion_interval(len(names) if outcomes[0] else 0, len(names), confidence)
        return Estimate(interval.value, interval.low, interval.high, len(outcomes))
    hits = np.array([sum(bool(o) for o, c in zip(outcomes, clusters) if c == name) for name in names], dtype=float)
    sizes = np.array([sum(c == name for c in clusters) for name in names], dtype=float)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(names), size=(BOOTSTRAP_RESAMPLES, len(names)))
    rates = hits[picks].sum(axis=1) / sizes[picks].sum(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(rates, [tail, 1 - tail])
    return Estimate(float(hits.sum() / sizes.sum()), float(low), float(high), len(outcomes))


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE, seed: int = 0) -> Estimate:
    """The mean of per-example scores with a percentile-bootstrap interval (seeded: same data, same interval)."""
    data = np.asarray(values, dtype=float)
    if data.ndim != 1 or len(data) < 2:
        raise ValueError(f"need at least two per-example scores, got {len(data)}")
    if np.all(data == data[0]):
        return Estimate(float(data[0]), float(data[0]), float(data[0]), len(data))
    result = stats.bootstrap((data,), np.mean, confidence_level=confidence, n_resamples=BOOTSTRAP_RESAMPLES,
                             method="percentile", rng=np.random.default_rng(seed))
    interval = result.confidence_interval
    return Estimate(float(data.mean()), float(interval.low), float(interval.high), len(data))


def paired_difference(first: Sequence[float], second: Sequence[float], confidence: float = CONFIDENCE,
                      seed: int = 0) -> Estimate:
    """Mean of `first - second` over the same examples, with a bootstrap interval.

    Pairing matters: two models answering the same questions share the
    questions' difficulty, so their per-question difference is far less noisy
    than the difference of two separate means.
    """
    if len(first) != len(second):
        raise ValueError(f"paired scores need the same examples: {len(first)} against {len(second)}")
    return mean_interval(np.asarray(first, dtype=float) - np.asarray(second, dtype=float), confidence, seed)


@dataclass(frozen=True)
class McNemarResult:
    """Exact McNemar test of two models on the same examples: only the examples they disagree on count."""

    first_only: int  # examples the first model got right and the second wrong
    second_only: int  # the reverse
    p_value: float


def mcnemar_test(first: Sequence[bool], second: Sequence[bool]) -> McNemarResult:
    """Is one model right more often than the other, on the same examples? (exact binomial McNemar test)

    Examples both models get right, or both wrong, say nothing about which is
    better. Under "no difference" each disagreement is a fair coin flip, so the
    two-sided p-value is a binomial test on the disagreements.
    """
    if len(first) != len(second):
        raise ValueError(f"paired outcomes need the same examples: {len(first)} against {len(second)}")
    first_only = sum(bool(a) and not bool(b) for a, b in zip(first, second))
    second_only = sum(bool(b) and not bool(a) for a, b in zip(first, second))
    disagreements = first_only + second_only
    p_value = 1.0 if disagreements == 0 else float(stats.binomtest(first_only, disagreements, 0.5).pvalue)
    return McNemarResult(first_only, second_only, p_value)


def examples_needed(rate_first: float, rate_second: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Examples per model to tell two success rates apart with a two-sided test (two independent samples).

    The normal-approximation formula for comparing two proportions (Fleiss,
    without continuity correction): with this many examples per model, a real
    difference of ``rate_first - rate_second`` is detected with probability
    ``power`` at significance ``alpha``. Paired designs (the same questions for
    both models) need fewer.
    """
    for name, value in (("rate_first", rate_first), ("rate_second", rate_second), ("alpha", alpha), ("power", power)):
        if not 0 < value < 1:
            raise ValueError(f"{name} must lie strictly between 0 and 1, got {value}")
    if rate_first == rate_second:
        raise ValueError("the two rates are equal: no finite number of examples tells them apart")
    mean_rate = (rate_first + rate_second) / 2
    z_alpha, z_power = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    spread = (z_alpha * np.sqrt(2 * mean_rate * (1 - mean_rate))
              + z_power * np.sqrt(rate_first * (1 - rate_first) + rate_second * (1 - rate_second)))
    return int(np.ceil(spread**2 / (rate_first - rate_second) ** 2))
