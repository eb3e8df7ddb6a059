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
    """
    if len(outcomes) != len(clusters) or not outcomes:
        raise ValueError(f"need one cluster per outcome, got {len(outcomes)} outcomes and {len(clusters)} clusters")
    names = sorted(set(clusters))
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
