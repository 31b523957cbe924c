"""Always-valid statistics for A/B experiments: per-arm intervals, the difference of two arms as a
confidence sequence with its always-valid p-value, verdicts, non-inferiority and how many more
observations would decide a comparison. Pure: math and numpy only.

**The confidence sequence.** From n observations with mean x̄ and standard error SE, the interval

    x̄ ± c(n)·SE,    c(n) = sqrt( (1 + ρ/n) · ln((n + ρ) / (ρ·α²)) )

is the two-sided normal-mixture boundary |S_n| < sqrt((V_n + ρ) ln((V_n + ρ)/(ρα²))) of Howard,
Ramdas, McAuliffe & Sekhon (2021), "Time-uniform, nonparametric, nonasymptotic confidence
sequences", Ann. Statist. 49(2), written for the standardized sum (V_n = n: ρ is counted in
observations, so one value suits every metric's scale). With the variance estimated from the data
it is the asymptotic confidence sequence of Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas (2024),
"Time-uniform central limit theory and asymptotic confidence sequences", Ann. Statist.: it holds
at every n *at once* with probability about 1 − α, so a report may be read as often as one likes
(peeking is safe). Where a fixed-n interval uses z = 1.96, c(n) is about 3 for α = 0.05. ρ sets
where it is tightest: `mixture_rho` takes ρ = m / (2 ln(1/α) + ln(1 + 2 ln(1/α))), near-tightest
at n = m (Howard et al.).

**Two arms.** For B − A: the difference of means, SE = sqrt(v_A/n_A + v_B/n_B), n = n_A + n_B.
This is the boundary above applied to the experiment's inverse-propensity terms, as Waudby-Smith
et al. do for randomized experiments, with the propensity estimated by the arms' shares. The
always-valid p-value is the reciprocal of the normal-mixture martingale (the mSPRT of Johari,
Koomen, Pekelis & Walsh (2022), "Always valid inference: continuous monitoring of A/B tests",
Oper. Res.):

    p_n = min(1, sqrt((n + ρ)/ρ) · exp(−n·z² / (2(n + ρ)))),    z = (x̄_B − x̄_A) / SE,

and p_n < α exactly when the interval excludes 0.

**Per arm.** A proportion uses the Wilson score interval with c(n) in place of z, and its variance
is p̃(1 − p̃) with p̃ = (x + 1)/(n + 2) (Agresti & Caffo 2000), so 0% and 100% do not collapse the
interval. A quantile q_p lies between the order statistics of ranks ⌊np − h⌋ and ⌊np + h⌋ + 1,
h = c(n)·sqrt(np(1 − p)): the sequence for the share of values below q_p turned into one for q_p
(Howard & Ramdas (2022), "Sequential estimation of quantiles with applications to A/B-testing and
best-arm identification", Bernoulli), here in its normal-mixture, asymptotic form. A ratio
Σa/Σb uses the delta method: SE = sqrt(Σ(a_i − R·b_i)² / (n(n − 1))) / b̄.

Every interval here is asymptotic (it relies on a central limit theorem), hence the minimum number
of observations the callers require before a verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Verdict = Literal["better", "worse", "not different", "not enough data yet"]
NonInferiorityVerdict = Literal["no worse", "worse", "undecided"]
#: Beyond this many observations "how many more would decide it" is reported as out of reach.
_MAX_OBSERVATIONS = 10**12


@dataclass(frozen=True)
class Interval:
    """[low, high]; None on a side means unbounded there (too few observations to say)."""

    low: float | None
    high: float | None

    @property
    def half_width(self) -> float | None:
        """Half the width, None when a side is unbounded."""
        return None if self.low is None or self.high is None else (self.high - self.low) / 2


@dataclass(frozen=True)
class Estimate:
    """A point estimate, its always-valid interval and how many observations it rests on."""

    value: float
    interval: Interval
    n: int


@dataclass(frozen=True)
class Sample:
    """What one arm's observations of one metric amount to: their number, mean and the variance
    of one observation (the standard error is sqrt(variance / n))."""

    n: int
    mean: float
    variance: float

    @classmethod
    def of_values(cls, values: Sequence[float]) -> Sample:
        """Mean and unbiased variance of at least one value (variance infinite for one)."""
        if len(values) == 0:
            raise ValueError("a sample needs at least one value")
        data = np.asarray(values, dtype=float)
        variance = float(data.var(ddof=1)) if len(data) > 1 else math.inf
        return cls(len(data), float(data.mean()), variance)

    @classmethod
    def of_sums(cls, n: int, total: float, squares: float) -> Sample:
        """The sample of n >= 1 values from their sum and sum of squares: mean Σx/n, unbiased
        variance (Σx² − n·x̄²)/(n − 1) (never below 0, infinite for one value), as `of_values`."""
        if n < 1:
            raise ValueError("a sample needs at least one value")
        mean = total / n
        variance = max(0.0, (squares - n * mean * mean) / (n - 1)) if n > 1 else math.inf
        return cls(n, mean, variance)

    @classmethod
    def of_counts(cls, successes: int, n: int) -> Sample:
        """A proportion: mean x/n, variance p̃(1 − p̃) with p̃ = (x + 1)/(n + 2)."""
        if n < 1 or not 0 <= successes <= n:
            raise ValueError(f"need 0 <= successes <= n and n >= 1, got {successes} of {n}")
        tilde = (successes + 1) / (n + 2)
        return cls(n, successes / n, tilde * (1 - tilde))

    @property
    def std_error(self) -> float:
        return math.sqrt(self.variance / self.n)


@dataclass(frozen=True)
class Difference:
    """Treatment minus control: the estimate, its standard error, the total observations n, the
    confidence sequence's interval at n and the always-valid p-value for "no difference"."""

    estimate: float
    std_error: float
    n: int
    interval: Interval
    p_value: float


@dataclass(frozen=True)
class Comparison:
    """A difference with its plain verdict and about how many more observations (of both arms
    together, in the current proportions) would decide it: 0 when decided, None when out of reach."""

    difference: Difference
    verdict: Verdict
    more_to_decide: int | None


@dataclass(frozen=True)
class NonInferiority:
    """"Is the treatment no worse than the control by more than `margin`?": "no worse" when the
    interval's bad-side bound is within the margin, "worse" when the whole interval is beyond it."""

    margin: float
    verdict: NonInferiorityVerdict
    more_to_decide: int | None


def mixture_rho(alpha: float, horizon: float) -> float:
    """The mixing parameter that makes the sequence near-tightest at `horizon` observations."""
    _check_alpha(alpha)
    log_term = 2 * math.log(1 / alpha)
    return horizon / (log_term + math.log(1 + log_term))


def cs_multiplier(n: float, alpha: float, rho: float) -> float:
    """c(n) = sqrt((1 + ρ/n) ln((n + ρ)/(ρα²))): the confidence sequence's multiplier of the SE."""
    if n <= 0 or rho <= 0:
        raise ValueError(f"need n > 0 and rho > 0, got n={n}, rho={rho}")
    _check_alpha(alpha)
    return math.sqrt((1 + rho / n) * math.log((n + rho) / (rho * alpha * alpha)))


def mean_interval(sample: Sample, alpha: float, rho: float) -> Interval:
    """x̄ ± c(n)·SE (unbounded for fewer than two observations)."""
    if sample.n < 2 or not math.isfinite(sample.variance):
        return Interval(None, None)
    half = cs_multiplier(sample.n, alpha, rho) * sample.std_error
    return Interval(sample.mean - half, sample.mean + half)


def proportion_interval(successes: int, n: int, alpha: float, rho: float) -> Interval:
    """The Wilson score interval for x/n with c(n) in place of z, within [0, 1]."""
    if n < 1:
        return Interval(None, None)
    c2 = cs_multiplier(n, alpha, rho) ** 2
    share = successes / n
    centre = (share + c2 / (2 * n)) / (1 + c2 / n)
    half = math.sqrt(c2) / (1 + c2 / n) * math.sqrt(share * (1 - share) / n + c2 / (4 * n * n))
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def quantile_interval(values: Sequence[float], q: float, alpha: float, rho: float) -> Interval:
    """Order statistics bracketing the q-quantile (0 < q < 1): ranks ⌊nq − h⌋ and ⌊nq + h⌋ + 1,
    h = c(n)·sqrt(nq(1 − q)); a side whose rank falls outside 1..n is unbounded."""
    if not 0 < q < 1:
        raise ValueError(f"quantile must be in (0, 1), got {q}")
    n = len(values)
    if n == 0:
        return Interval(None, None)
    ordered = sorted(values)
    low_rank, high_rank = quantile_ranks(n, q, alpha, rho)
    return Interval(ordered[low_rank - 1] if low_rank >= 1 else None,
                    ordered[high_rank - 1] if high_rank <= n else None)


def quantile_ranks(n: int, q: float, alpha: float, rho: float) -> tuple[int, int]:
    """The ranks (1-based) of the order statistics bracketing the q-quantile of n >= 1 values:
    ⌊nq − h⌋ and ⌊nq + h⌋ + 1, h = c(n)·sqrt(nq(1 − q)); outside 1..n means unbounded there."""
    if not 0 < q < 1:
        raise ValueError(f"quantile must be in (0, 1), got {q}")
    h = cs_multiplier(n, alpha, rho) * math.sqrt(n * q * (1 - q))
    return math.floor(n * q - h), math.floor(n * q + h) + 1


def ratio_estimate(numerators: Sequence[float], denominators: Sequence[float], alpha: float,
                   rho: float) -> Estimate | None:
    """R = Σa/Σb over paired values with its delta-method interval; None when Σb is 0."""
    if len(numerators) != len(denominators):
        raise ValueError("numerators and denominators must pair up")
    a, b = np.asarray(numerators, dtype=float), np.asarray(denominators, dtype=float)
    n = len(a)
    if n == 0 or b.sum() == 0:
        return None
    ratio = float(a.sum() / b.sum())
    if n < 2:
        return Estimate(ratio, Interval(None, None), n)
    se = math.sqrt(float(((a - ratio * b) ** 2).sum()) / (n * (n - 1))) / float(b.mean())
    half = cs_multiplier(n, alpha, rho) * se
    return Estimate(ratio, Interval(ratio - half, ratio + half), n)


@dataclass(frozen=True)
class PairSums:
    """What the ratio Σa/Σb and its interval need of n pairs (a, b): the sums, the sums of
    squares and the sum of products."""

    n: int
    a: float
    b: float
    aa: float
    bb: float
    ab: float


def ratio_of_sums(sums: PairSums, alpha: float, rho: float) -> Estimate | None:
    """`ratio_estimate` from sums: R = Σa/Σb, Σ(a − Rb)² = Σa² − 2RΣab + R²Σb² (never below 0);
    None when there are no pairs or Σb is 0."""
    n = sums.n
    if n == 0 or sums.b == 0:
        return None
    ratio = sums.a / sums.b
    if n < 2:
        return Estimate(ratio, Interval(None, None), n)
    residuals = max(0.0, sums.aa - 2 * ratio * sums.ab + ratio * ratio * sums.bb)
    se = math.sqrt(residuals / (n * (n - 1))) / (sums.b / n)
    half = cs_multiplier(n, alpha, rho) * se
    return Estimate(ratio, Interval(ratio - half, ratio + half), n)


def always_valid_p(z: float, n: int, rho: float) -> float:
    """min(1, sqrt((n + ρ)/ρ)·exp(−n z²/(2(n + ρ)))): the mSPRT's always-valid p-value."""
    exponent = n * z * z / (2 * (n + rho)) - 0.5 * math.log((n + rho) / rho)
    return 1.0 if exponent <= 0 else math.exp(-exponent)


def difference(control: Sample, treatment: Sample, alpha: float, rho: float) -> Difference:
    """Treatment − control with its confidence-sequence interval and always-valid p-value."""
    estimate = treatment.mean - control.mean
    n = control.n + treatment.n
    se = math.sqrt(control.variance / control.n + treatment.variance / treatment.n)
    if not math.isfinite(se):
        return Difference(estimate, se, n, Interval(None, None), 1.0)
    half = cs_multiplier(n, alpha, rho) * se
    z = estimate / se if se else (0.0 if estimate == 0 else math.inf)
    return Difference(estimate, se, n, Interval(estimate - half, estimate + half),
                      always_valid_p(z, n, rho))


def observations_to_reach(half_width: float, diff: Difference, alpha: float,
                          rho: float) -> int | None:
    """The fewest total observations N >= diff.n at which the interval's half-width would be at
    most `half_width`, if the per-observation spread (SE·sqrt(n)) stays as it is; None when that
    is out of reach. c(N)/sqrt(N) decreases in N (for α < 0.6), so a bisection finds it."""
    sigma = diff.std_error * math.sqrt(diff.n)
    if half_width <= 0 or not math.isfinite(sigma):
        return None

    def fits(n: int) -> bool:
        return cs_multiplier(n, alpha, rho) * sigma / math.sqrt(n) <= half_width

    low = max(diff.n, 1)
    if fits(low):
        return low
    high = low * 2
    while not fits(high):
        if high > _MAX_OBSERVATIONS:
            return None
        high *= 2
    while high - low > 1:  # fits(high) and not fits(low)
        middle = (low + high) // 2
        low, high = (low, middle) if fits(middle) else (middle, high)
    return high


def compare(control: Sample, treatment: Sample, *, alpha: float, rho: float, margin: float,
            higher_is_better: bool, min_samples: int) -> Comparison:
    """The verdict on treatment vs control: "better" / "worse" when the interval excludes 0 on
    that side, "not different" when it lies within ±margin, else "not enough data yet" (also
    while either arm has fewer than `min_samples` observations)."""
    diff = difference(control, treatment, alpha, rho)
    verdict = _decided(diff, margin, higher_is_better)
    deficit = shortfall(control, treatment, min_samples)
    if verdict is not None:
        return Comparison(diff, "not enough data yet", deficit) if deficit else Comparison(diff, verdict, 0)
    gain = _oriented(diff, higher_is_better)[0]
    target = observations_to_reach(max(abs(gain), margin - abs(gain)), diff, alpha, rho)
    if target is None:  # out of reach, or no spread to go by yet: at least the minimum
        return Comparison(diff, "not enough data yet", deficit or None)
    return Comparison(diff, "not enough data yet", max(target - diff.n, deficit))


def shortfall(control: Sample, treatment: Sample, min_samples: int) -> int:
    """Observations still missing before both arms have `min_samples`."""
    return max(0, min_samples - control.n) + max(0, min_samples - treatment.n)


def _decided(diff: Difference, margin: float, higher_is_better: bool) -> Verdict | None:
    """better / worse / not different when the interval says so, else None."""
    _, low, high = _oriented(diff, higher_is_better)
    if low is None or high is None:
        return None
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    if -margin < low and high < margin:
        return "not different"
    return None


def non_inferiority(diff: Difference, margin: float, *, higher_is_better: bool, alpha: float,
                    rho: float, shortfall: int = 0) -> NonInferiority:
    """Whether the treatment is no worse than the control by more than `margin` (absolute, in the
    metric's units). The two-sided interval at α is used, so the test's error rate is at most α.
    While `shortfall` observations are still missing from the minimum sample it stays undecided."""
    gain, low, high = _oriented(diff, higher_is_better)
    decided: NonInferiorityVerdict | None = (
        "no worse" if low is not None and low > -margin else
        "worse" if high is not None and high < -margin else None)
    if decided is not None:
        return NonInferiority(margin, "undecided", shortfall) if shortfall else \
            NonInferiority(margin, decided, 0)
    target = observations_to_reach(abs(gain + margin), diff, alpha, rho)
    more = (shortfall or None) if target is None else max(target - diff.n, shortfall)
    return NonInferiority(margin, "undecided", more)


def significantly_worse(diff: Difference, *, higher_is_better: bool) -> bool:
    """Whether the whole interval lies on the bad side of 0 (what stops an arm at a guardrail)."""
    _, low, high = _oriented(diff, higher_is_better)
    return low is not None and high is not None and high < 0


def _oriented(diff: Difference, higher_is_better: bool) -> tuple[float, float | None, float | None]:
    """(gain, low, high) with the sign turned so that positive means better."""
    if higher_is_better:
        return diff.estimate, diff.interval.low, diff.interval.high
    low, high = diff.interval.low, diff.interval.high
    return (-diff.estimate, None if high is None else -high, None if low is None else -low)


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
