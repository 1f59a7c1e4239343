"""The statistics behind compare's verdicts: a mean over seeds with its 95 % Student-t interval,
a paired bootstrap over the test examples (every variant scored on the same examples), and the
Pareto front of score against cost.

Written here rather than taken from scipy.stats.bootstrap: that one returns an interval but no
p-value for a paired difference, and resamples one statistic at a time; this one resamples the
per-example differences in chunks (10,000 resamples of 25,000 IMDb rows stay under 200 MB) and
is checked against scipy's interval and a closed form in tests/test_intervals.py."""

from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 10_000
TIED_P = 0.05  # a p-value at or above this: tied with the best


def mean_interval(
    values: list[float], confidence: float = CONFIDENCE
) -> tuple[float, float | None]:
    """The mean of per-seed figures and the half-width of its Student-t interval (None for one
    figure: no spread to measure)."""
    array = np.asarray(values, dtype=float)
    if len(array) < 2:
        return float(array.mean()), None
    from scipy import stats  # here: scipy.stats costs every start-up 0.7 s, read by compare only

    sem = array.std(ddof=1) / np.sqrt(len(array))
    return float(array.mean()), float(stats.t.ppf((1 + confidence) / 2, len(array) - 1) * sem)


@dataclass(frozen=True)
class PairedDifference:
    """a - b on the same examples: its mean, bootstrap interval and two-sided p-value."""

    mean: float
    low: float
    high: float
    p_value: float


def bootstrap_means(values: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """The mean of `resamples` resamples (with replacement) of `values`, in chunks."""
    rng = np.random.default_rng(seed)
    n, chunk, means = len(values), max(1, 4_000_000 // max(len(values), 1)), []
    for start in range(0, resamples, chunk):
        picks = rng.integers(0, n, size=(min(chunk, resamples - start), n))
        means.append(values[picks].mean(axis=1))
    return np.concatenate(means)


def paired_bootstrap(
    a: np.ndarray,
    b: np.ndarray,
    resamples: int = RESAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> PairedDifference:
    """Resample the examples (the same picks for both sides: the pairing) and measure how often
    the difference of means is as far from its observed value as zero is (the bootstrap test
    with the distribution shifted to the null; Efron & Tibshirani, ch. 16)."""
    differences = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if len(differences) == 0:
        raise ValueError("no examples to compare")
    observed = float(differences.mean())
    means = bootstrap_means(differences, resamples, seed)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    if np.all(differences == differences[0]):  # every example the same: no noise to test
        p_value = 1.0 if observed == 0 else 0.0
    else:
        # mid-p: outcomes are on a lattice (0/1 per example), so resamples land exactly on
        # |observed| often; counting them half keeps the test from reading conservative
        distance = np.abs(means - observed)
        on_edge = np.isclose(distance, abs(observed), rtol=0, atol=1e-12)
        beyond = (distance > abs(observed)) & ~on_edge
        p_value = float(np.mean(beyond) + 0.5 * np.mean(on_edge))
    return PairedDifference(observed, float(low), float(high), p_value)


def pareto_front(costs: list[float], scores: list[float], higher_is_better: bool) -> list[bool]:
    """True for each point no other point beats on both: cost as low or lower and score as good
    or better, one of them strictly."""
    sign = 1 if higher_is_better else -1
    points = [(c, sign * s) for c, s in zip(costs, scores, strict=True)]

    def dominated(i: int) -> bool:
        ci, si = points[i]
        return any(
            c <= ci and s >= si and (c < ci or s > si) for j, (c, s) in enumerate(points) if j != i
        )

    return [not dominated(i) for i in range(len(points))]
