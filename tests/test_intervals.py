"""compare's statistics against independent computations: the seed interval against a
hand-computed Student t, the paired bootstrap's interval against scipy.stats.bootstrap and its
p-value against the normal closed form; the Pareto front on a case checked by hand."""

import numpy as np
import pytest
from scipy import stats

from tunelab.report.intervals import TIED_P, mean_interval, paired_bootstrap, pareto_front


def test_the_seed_interval_is_students_t():
    mean, half = mean_interval([0.90, 0.92, 0.97])
    # t(0.975, 2) = 4.302653; sd = 0.036056; sem = sd / sqrt(3)
    assert mean == pytest.approx(0.93)
    assert half == pytest.approx(4.302653 * 0.0360555 / np.sqrt(3), rel=1e-5)
    assert mean_interval([0.9]) == (0.9, None)


def paired_outcomes(n: int, right_a: float, right_b: float, seed: int):
    rng = np.random.default_rng(seed)
    a = (rng.random(n) < right_a).astype(float)
    b = np.where(rng.random(n) < 0.8, a, (rng.random(n) < right_b).astype(float))
    return a, b


def test_the_bootstrap_interval_matches_scipy():
    a, b = paired_outcomes(400, 0.9, 0.7, seed=1)
    ours = paired_bootstrap(a, b, resamples=20_000, seed=3)
    theirs = stats.bootstrap(
        (a, b),
        lambda x, y: np.mean(x - y),
        paired=True,
        vectorized=False,
        n_resamples=20_000,
        method="percentile",
        random_state=7,
    ).confidence_interval
    assert ours.mean == pytest.approx(np.mean(a - b))
    # two Monte Carlo estimates of the same quantiles: they differ by resampling noise only
    assert ours.low == pytest.approx(theirs.low, abs=0.006)
    assert ours.high == pytest.approx(theirs.high, abs=0.006)


@pytest.mark.parametrize("gap", [0.0, 0.005, 0.01, 0.02])
def test_the_bootstrap_p_value_matches_the_normal_closed_form(gap):
    a, b = paired_outcomes(1000, 0.85, 0.85 - gap * 5, seed=2)
    d = a - b
    z = d.mean() / (d.std(ddof=1) / np.sqrt(len(d)))
    closed = 2 * stats.norm.sf(abs(z))
    ours = paired_bootstrap(a, b, resamples=20_000, seed=5)
    assert ours.p_value == pytest.approx(closed, abs=0.015)


def test_one_example_apart_on_three_hundred_is_a_tie_and_a_clear_gap_is_not():
    truth = np.ones(298)
    ia3, qlora = truth.copy(), truth.copy()
    ia3[:4], qlora[:5] = 0, 0  # 0.9866 against 0.9832: the docs' old ranking
    assert paired_bootstrap(ia3, qlora).p_value >= TIED_P  # one message apart: tied
    head = truth.copy()
    head[:15] = 0  # 0.9497
    assert paired_bootstrap(ia3, head).p_value < 0.01
    same = paired_bootstrap(ia3, ia3)
    assert (same.mean, same.p_value) == (0.0, 1.0)


def test_the_pareto_front_keeps_what_nothing_beats_on_both():
    costs = [10, 20, 30, 15, 40]
    scores = [0.90, 0.95, 0.94, 0.89, 0.99]
    # 30 s / 0.94 loses to 20 s / 0.95; 15 s / 0.89 loses to 10 s / 0.90
    assert pareto_front(costs, scores, True) == [True, True, False, False, True]
    losses = [1.0, 0.5, 0.7]  # lower is better: the cheapest and the lowest loss stay
    assert pareto_front([1, 2, 3], losses, False) == [True, True, False]
