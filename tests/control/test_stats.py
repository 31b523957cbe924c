"""The always-valid statistics: hand-computed intervals, p-values, verdicts, non-inferiority, the
"how many more" solver, and a seeded simulation of peeking (the confidence sequence keeps its error
rate, a fixed-n z-test does not)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmroute.control.stats import (
    Difference,
    Interval,
    NonInferiority,
    Sample,
    always_valid_p,
    compare,
    cs_multiplier,
    difference,
    mean_interval,
    mixture_rho,
    non_inferiority,
    observations_to_reach,
    proportion_interval,
    quantile_interval,
    ratio_estimate,
    shortfall,
    significantly_worse,
)

# α = 0.05, tuned for 1000 observations: ρ = 1000 / (2 ln 20 + ln(1 + 2 ln 20))
#   = 1000 / (5.991465 + 1.944691) = 126.00561
ALPHA = 0.05
RHO = 126.0056097925634
approx = pytest.approx


def test_mixture_rho_and_multiplier_by_hand() -> None:
    assert mixture_rho(ALPHA, 1000) == approx(RHO, rel=1e-12)
    # c(100) = sqrt((1 + 126.00561/100) · ln(226.00561 / (126.00561 · 0.0025)))
    #        = sqrt(2.2600561 · ln 717.4565) = sqrt(2.2600561 · 6.575718) = 3.855055
    assert cs_multiplier(100, ALPHA, RHO) == approx(3.855055, abs=1e-6)
    assert cs_multiplier(200, ALPHA, RHO) == approx(3.363888, abs=1e-6)
    assert cs_multiplier(400, ALPHA, RHO) == approx(3.123779, abs=1e-6)
    # wider than the fixed-n 1.96, and tightest near the tuned n (1000)
    widths = {n: cs_multiplier(n, ALPHA, RHO) for n in (300, 1000, 3000)}
    assert min(widths.values()) > 1.96 and widths[1000] < min(widths[300], widths[3000])


@pytest.mark.parametrize("bad", [0.0, 0.5, 1.2])
def test_alpha_out_of_range_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="alpha"):
        cs_multiplier(10, bad, RHO)


def test_samples() -> None:
    s = Sample.of_values([4.0, 5.0, 6.0])
    assert (s.n, s.mean, s.variance) == (3, 5.0, 1.0)
    assert Sample.of_values([2.0]).variance == math.inf
    # Agresti–Caffo: p̃ = (0 + 1)/(10 + 2) = 1/12, variance 1/12 · 11/12, never 0
    zero = Sample.of_counts(0, 10)
    assert zero.mean == 0 and zero.variance == approx(11 / 144)
    with pytest.raises(ValueError):
        Sample.of_counts(11, 10)
    with pytest.raises(ValueError):
        Sample.of_values([])


def test_mean_interval_by_hand() -> None:
    # 50 ratings: 25 fives and 25 fours: mean 4.5, s² = 0.25 · 50/49 = 0.255102, SE = 0.071429
    # 4.5 ± c(50) · SE = 4.5 ± 4.718793 · 0.0714286 = [4.162943, 4.837057]
    interval = mean_interval(Sample.of_values([5.0] * 25 + [4.0] * 25), ALPHA, RHO)
    assert (interval.low, interval.high) == (approx(4.162943, abs=1e-6), approx(4.837057, abs=1e-6))
    assert mean_interval(Sample.of_values([3.0]), ALPHA, RHO) == Interval(None, None)


def test_wilson_interval_by_hand() -> None:
    # 80 of 100, c² = 3.855055² = 14.861446: centre (0.8 + 0.0743072)/1.1486145 = 0.761184,
    # half 3.855055/1.1486145 · sqrt(0.0016 + 0.000371536) = 0.149025 -> [0.612159, 0.910209]
    interval = proportion_interval(80, 100, ALPHA, RHO)
    assert (interval.low, interval.high) == (approx(0.612159, abs=1e-6), approx(0.910209, abs=1e-6))
    # 0 of 10 still has width, and the bounds stay in [0, 1]
    none = proportion_interval(0, 10, ALPHA, RHO)
    assert none.low == 0.0 and none.high is not None and 0.3 < none.high < 1
    assert proportion_interval(0, 0, ALPHA, RHO) == Interval(None, None)


def test_quantile_interval_ranks_by_hand() -> None:
    values = [0.01 * i for i in range(200, 0, -1)]  # unsorted on purpose
    # median: h = c(200) · sqrt(200 · 0.25) = 3.363888 · 7.071068 = 23.786; ranks 76 and 124
    median = quantile_interval(values, 0.5, ALPHA, RHO)
    assert (median.low, median.high) == (approx(0.76), approx(1.24))
    # p95: h = 3.363888 · sqrt(200 · 0.95 · 0.05) = 10.368; ranks 179 and 201 (past n: unbounded)
    p95 = quantile_interval(values, 0.95, ALPHA, RHO)
    assert (p95.low, p95.high) == (approx(1.79), None)
    assert quantile_interval([1.0, 2.0], 0.5, ALPHA, RHO) == Interval(None, None)
    with pytest.raises(ValueError):
        quantile_interval(values, 1.0, ALPHA, RHO)


def test_ratio_estimate_by_hand() -> None:
    # costs 1, 2, 3 over ratings 1, 1, 2: R = 6/4 = 1.5; residuals a - 1.5 b = -0.5, 0.5, 0
    # SE = sqrt(0.5 / (3 · 2)) / (4/3) = 0.288675 / 1.333333 = 0.216506
    estimate = ratio_estimate([1.0, 2.0, 3.0], [1.0, 1.0, 2.0], ALPHA, RHO)
    assert estimate is not None and estimate.value == 1.5 and estimate.n == 3
    half = cs_multiplier(3, ALPHA, RHO) * 0.216506
    assert estimate.interval.low == approx(1.5 - half, abs=1e-5)
    assert estimate.interval.high == approx(1.5 + half, abs=1e-5)
    assert ratio_estimate([], [], ALPHA, RHO) is None
    assert ratio_estimate([1.0], [0.0], ALPHA, RHO) is None


def test_difference_of_proportions_by_hand() -> None:
    # control 10/200 errors, treatment 30/200: p̃ = 11/202 and 31/202,
    # SE = sqrt(0.0514900/200 + 0.1299133/200) = 0.0301168; c(400) = 3.123779
    diff = difference(Sample.of_counts(10, 200), Sample.of_counts(30, 200), ALPHA, RHO)
    assert diff.estimate == approx(0.10) and diff.n == 400
    assert diff.std_error == approx(0.0301168, abs=1e-7)
    assert diff.interval.low == approx(0.0059219, abs=1e-6)
    assert diff.interval.high == approx(0.1940781, abs=1e-6)
    # z = 3.320408: p = sqrt(526.0056/126.0056) · exp(-400 z² / (2 · 526.0056)) = 0.030884
    assert diff.p_value == approx(0.030884, abs=1e-6)


def test_p_value_below_alpha_exactly_when_the_interval_excludes_zero() -> None:
    for z in np.linspace(0, 6, 121):
        for n in (10, 200, 5000):
            excluded = abs(z) > cs_multiplier(n, ALPHA, RHO)
            assert (always_valid_p(float(z), n, RHO) < ALPHA) == excluded
    assert always_valid_p(0.0, 100, RHO) == 1.0


def test_zero_variance_difference() -> None:
    same = Sample(100, 1.0, 0.0)
    assert difference(same, same, ALPHA, RHO).p_value == 1.0
    assert difference(same, Sample(100, 2.0, 0.0), ALPHA, RHO).p_value == 0.0
    one = Sample.of_values([1.0])
    assert difference(one, same, ALPHA, RHO).interval == Interval(None, None)


def test_observations_to_reach_solves_the_boundary() -> None:
    diff = Difference(-0.01, 0.0576767, 200, Interval(-0.204, 0.184), 1.0)
    n = observations_to_reach(0.01, diff, ALPHA, RHO)
    sigma = 0.0576767 * math.sqrt(200)
    assert n is not None
    assert cs_multiplier(n, ALPHA, RHO) * sigma / math.sqrt(n) <= 0.01
    assert cs_multiplier(n - 1, ALPHA, RHO) * sigma / math.sqrt(n - 1) > 0.01
    assert n == 83196  # by hand: the first n where 3.4xx · 0.815675 / sqrt(n) <= 0.01
    assert observations_to_reach(1.0, diff, ALPHA, RHO) == 200  # already there
    assert observations_to_reach(0.0, diff, ALPHA, RHO) is None
    assert observations_to_reach(1e-9, diff, ALPHA, RHO) is None  # out of reach


def test_compare_verdicts() -> None:
    control = Sample.of_counts(10, 200)
    worse = compare(control, Sample.of_counts(30, 200), alpha=ALPHA, rho=RHO, margin=0.02,
                    higher_is_better=False, min_samples=30)
    assert worse.verdict == "worse" and worse.more_to_decide == 0
    better = compare(Sample.of_counts(30, 200), control, alpha=ALPHA, rho=RHO, margin=0.02,
                     higher_is_better=False, min_samples=30)
    assert better.verdict == "better"
    # the same data is "better" for a metric where higher is better
    assert compare(control, Sample.of_counts(30, 200), alpha=ALPHA, rho=RHO, margin=0.02,
                   higher_is_better=True, min_samples=30).verdict == "better"
    # [-0.409, 0.369] lies inside ±0.5: not different
    ratings = compare(Sample.of_values([5.0] * 25 + [4.0] * 25),
                      Sample.of_values([5.0] * 24 + [4.0] * 26), alpha=ALPHA, rho=RHO,
                      margin=0.5, higher_is_better=True, min_samples=30)
    assert ratings.verdict == "not different" and ratings.more_to_decide == 0
    # decided by the interval but below the minimum sample: not enough data, 30 - 20 short each
    early = compare(Sample.of_counts(0, 20), Sample.of_counts(20, 20), alpha=ALPHA, rho=RHO,
                    margin=0.02, higher_is_better=True, min_samples=30)
    assert early.difference.interval.low is not None and early.difference.interval.low > 0
    assert early.verdict == "not enough data yet" and early.more_to_decide == 20
    assert shortfall(Sample.of_counts(0, 20), Sample.of_counts(5, 40), 30) == 10
    # one rating each: no spread to extrapolate from, so at least the minimum (29 more each)
    single = compare(Sample.of_values([4.0]), Sample.of_values([5.0]), alpha=ALPHA, rho=RHO,
                     margin=0.1, higher_is_better=True, min_samples=30)
    assert single.verdict == "not enough data yet" and single.more_to_decide == 58


def test_undecided_comparison_says_how_many_more() -> None:
    # success 80/100 vs 79/100, margin 0.02: |gain| = 0.01 and margin - |gain| = 0.01, so the
    # interval must shrink to half-width 0.01: 83,196 observations in all, 82,996 more
    result = compare(Sample.of_counts(80, 100), Sample.of_counts(79, 100), alpha=ALPHA, rho=RHO,
                     margin=0.02, higher_is_better=True, min_samples=30)
    assert result.verdict == "not enough data yet"
    assert result.difference.interval.low == approx(-0.204018, abs=1e-6)
    assert result.difference.interval.high == approx(0.184018, abs=1e-6)
    assert result.more_to_decide == 82_996


def test_non_inferiority() -> None:
    diff = difference(Sample.of_counts(80, 100), Sample.of_counts(79, 100), ALPHA, RHO)
    undecided = non_inferiority(diff, 0.02, higher_is_better=True, alpha=ALPHA, rho=RHO)
    assert undecided.verdict == "undecided" and undecided.more_to_decide == 82_996
    assert non_inferiority(diff, 0.25, higher_is_better=True, alpha=ALPHA,
                           rho=RHO).verdict == "no worse"  # low -0.204 > -0.25
    # errors up 10 points [0.0059, 0.1941], lower is better: worse beyond a 0.005 margin
    errors = difference(Sample.of_counts(10, 200), Sample.of_counts(30, 200), ALPHA, RHO)
    assert non_inferiority(errors, 0.005, higher_is_better=False, alpha=ALPHA,
                           rho=RHO).verdict == "worse"
    assert non_inferiority(errors, 0.2, higher_is_better=False, alpha=ALPHA,
                           rho=RHO).verdict == "no worse"
    # below the minimum sample a decided test stays undecided: 40 observations short
    assert non_inferiority(errors, 0.2, higher_is_better=False, alpha=ALPHA, rho=RHO,
                           shortfall=40) == NonInferiority(0.2, "undecided", 40)
    assert significantly_worse(errors, higher_is_better=False)
    assert not significantly_worse(errors, higher_is_better=True)


def _ever_rejects(successes_a: np.ndarray, successes_b: np.ndarray, looks: np.ndarray,
                  multiplier: float | None) -> bool:
    """Whether the test rejects "no difference" at any look (None: the confidence sequence)."""
    for n in looks:
        diff = difference(Sample.of_counts(int(successes_a[n - 1]), int(n)),
                          Sample.of_counts(int(successes_b[n - 1]), int(n)), ALPHA, RHO)
        c = multiplier if multiplier is not None else cs_multiplier(2 * int(n), ALPHA, RHO)
        if abs(diff.estimate) > c * diff.std_error:
            return True
    return False


def test_peeking_keeps_the_error_rate_where_a_fixed_n_test_does_not() -> None:
    """A/A test (both arms succeed 30% of the time), looked at after every 20 requests per arm
    from 40 to 2,000: the naive z-test (1.96) declares a difference in far more than 5% of runs,
    the always-valid interval in at most 5%."""
    rng = np.random.default_rng(20250101)
    runs, looks = 600, np.arange(40, 2001, 20)
    naive = always_valid = 0
    for _ in range(runs):
        a = np.cumsum(rng.random(2000) < 0.3)
        b = np.cumsum(rng.random(2000) < 0.3)
        naive += _ever_rejects(a, b, looks, 1.96)
        always_valid += _ever_rejects(a, b, looks, None)
    assert naive / runs > 0.2  # 0.38 with this seed: peeking inflates the fixed-n 5% sevenfold
    assert always_valid / runs <= ALPHA


def test_peeking_on_skewed_means_keeps_the_error_rate() -> None:
    """The same for means of skewed values (exponential, like costs and latencies), looked at
    every 20 requests per arm from 40 to 1,000."""
    rng = np.random.default_rng(3)
    runs, looks = 400, range(40, 1001, 20)
    naive = always_valid = 0
    for _ in range(runs):
        a, b = rng.exponential(1.0, 1000), rng.exponential(1.0, 1000)
        diffs = [difference(Sample.of_values(a[:n]), Sample.of_values(b[:n]), ALPHA, RHO)
                 for n in looks]
        naive += any(abs(d.estimate) > 1.96 * d.std_error for d in diffs)
        always_valid += any(d.p_value < ALPHA for d in diffs)
    assert naive / runs > 0.2  # 0.29 with this seed
    assert always_valid / runs <= ALPHA
