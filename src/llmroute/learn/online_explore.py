"""Exploration for learning online (issue 13): with a configurable share, route a request by a
Thompson draw of P(good) instead of the posterior mean (`online.OnlineProfiles.thompson`), and
count the explorations whose feedback has not arrived (`Pending`). Pure: the random source and
the clock are the caller's."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: A routing policy over one prompt: (P(good), expected cost) of the candidates → chosen index.
Pick = Callable[[F64, F64], int]


@dataclass(frozen=True)
class Decision:
    """A routing decision: the chosen candidate's index, and whether it came from exploration."""

    index: int
    explored: bool


#: Exploration strategies: "challenger" spends every explored request on the best candidate *other
#: than* the posterior-mean choice by a Thompson draw (top-two Thompson sampling); "thompson" routes it
#: by the draw among all candidates, so most explored requests re-confirm the mean's choice.
STRATEGIES: Final = ("challenger", "thompson")
#: Where an explored request's challenger is chosen: "prompt" draws (and bounds) at the request's own
#: latent; "traffic" at the pool's typical prompt (`TrafficMean`), so which model is explored does
#: not depend on the request and each challenger's feedback comes from a random sample of the traffic.
SCOPES: Final = ("prompt", "traffic")


@dataclass(frozen=True)
class Exploration:
    """With probability `share` (default 0: off), route by a Thompson draw of P(good) instead of the
    posterior mean, among the allowed candidates, with the same policy; never when `may_explore` is
    false (a request marked not to explore). `strategy` "challenger" (default) leaves the mean's own
    choice out of the draw, so the share is spent on the alternatives: with a confident prior, plain
    Thompson draws pick the incumbent nearly always and a model rated low on day one is rarely tried
    (on the held-out MMLU prompts, 3 feedbacks on Mixtral in 5,000 requests at 5%)."""

    share: float = 0.0
    strategy: str = "challenger"
    #: Quality gap cap (P(good) units; 1 = none): a challenger whose posterior-mean P(good) at the
    #: prompt is more than `gap` below the incumbent's is never explored.
    gap: float = 1.0
    #: Regret bound (0 = none): a challenger whose posterior probability of beating the incumbent
    #: at the prompt (`beat_probability`) is below `beat` is never explored.
    beat: float = 0.0
    #: Decay (0 = none): the coin's probability is `share` · decay / (decay + n), n the pool's
    #: learnt feedbacks, so exploration fades as the posterior firms up.
    decay: float = 0.0
    #: Where the challenger is drawn and bounded (`SCOPES`): at the request's latent ("prompt") or at
    #: the pool's typical one ("traffic"). With "prompt", a model wins the draw on the prompts it
    #: looks best on *by the day-one map*; where that map does not transfer they are not a random
    #: sample of its traffic (held-out mmlu-pro: the best model was explored on prompts harder than
    #: average, 2 of 6 rated good against its 61%), and since what it learns is mostly its level,
    #: such feedback lowers it everywhere.
    at: str = "prompt"

    def __post_init__(self) -> None:
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"exploration share must be in [0, 1], got {self.share}")
        if not 0.0 < self.gap <= 1.0 or not 0.0 <= self.beat < 1.0 or self.decay < 0.0:
            raise ValueError(f"exploration gap must be in (0, 1], beat in [0, 1) and decay >= 0, "
                             f"got {self.gap}, {self.beat}, {self.decay}")
        if self.strategy not in STRATEGIES or self.at not in SCOPES:
            raise ValueError(f"exploration strategy must be one of {', '.join(STRATEGIES)} and its "
                             f"scope one of {', '.join(SCOPES)}, got {self.strategy!r}, {self.at!r}")

    def rate(self, learnt: float = 0.0) -> float:
        """The coin's probability after `learnt` feedbacks: `share`, decayed when `decay` is set."""
        if self.decay <= 0.0:
            return self.share
        return self.share * self.decay / (self.decay + max(learnt, 0.0))

    def explores(self, rng: np.random.Generator, may_explore: bool = True,
                 learnt: float = 0.0) -> bool:
        """Whether this request explores: a coin with probability `rate(learnt)` (≤ `share`;
        drawn only when exploring is on and allowed)."""
        return may_explore and self.share > 0.0 and bool(rng.random() < self.rate(learnt))

    @property
    def bounded(self) -> bool:
        """Whether a gap cap or a regret bound narrows the challengers."""
        return self.gap < 1.0 or self.beat > 0.0

    def within(self, rows: npt.NDArray[np.int64], incumbent: int, p_mean: F64,
               p_beat: F64 | None = None) -> npt.NDArray[np.int64]:
        """The challengers of `rows` (indices into the candidate arrays) the bounds leave: P(good)
        within `gap` of the incumbent's, and (with `beat` set and `p_beat` given: each candidate's
        posterior probability of beating the incumbent) `p_beat` ≥ `beat`. The incumbent itself
        always passes."""
        if not self.bounded or len(rows) == 0:
            return rows
        pm = np.asarray(p_mean, dtype=np.float64)
        keep = (pm[rows] >= pm[incumbent] - self.gap) | (rows == incumbent)
        if self.beat > 0.0 and p_beat is not None:
            keep &= (np.asarray(p_beat, dtype=np.float64)[rows] >= self.beat) | (rows == incumbent)
        out: npt.NDArray[np.int64] = rows[keep]
        return out

    def challengers(self, ok: npt.NDArray[np.int64], incumbent: int) -> npt.NDArray[np.int64]:
        """The candidates an explored request may go to: all of `ok` for "thompson"; for
        "challenger", all but the `incumbent` (the mean's choice) unless it is the only one."""
        if self.strategy == "thompson" or len(ok) < 2:
            return ok
        rest: npt.NDArray[np.int64] = ok[ok != incumbent]
        return rest

    def open_challengers(self, ok: npt.NDArray[np.int64], incumbent: int, p_mean: F64,
                         p_beat: F64 | None = None, budget: RegretBudget | None = None
                         ) -> npt.NDArray[np.int64]:
        """The rows of `ok` an explored request may go to: the strategy's `challengers`, `within`
        the bounds, and (with `budget`) those it can afford, all against the means `p_mean`."""
        rest = self.within(self.challengers(ok, incumbent), incumbent, p_mean, p_beat)
        return rest if budget is None else budget.affordable(rest, incumbent, p_mean)

    def decide(self, p_mean: F64, p_draw: F64, cost: F64, allowed: BoolArray, pick: Pick,
               rng: np.random.Generator, may_explore: bool = True, *, learnt: float = 0.0,
               p_beat: F64 | None = None, budget: RegretBudget | None = None,
               p_choice: F64 | None = None) -> Decision:
        """The choice among `allowed` candidates (arrays over candidates): `pick` on the posterior-mean
        P(good) (or on `p_choice`: the optimistic one, `learning.optimism`), or — exploring — on the
        Thompson draw `p_draw` among `challengers` `within` the bounds (and, with `budget`, those it
        can afford; it counts this request and is charged for the one explored), both measured
        against the means. When none is left the request goes to the incumbent, not explored."""
        ok = np.flatnonzero(np.asarray(allowed, dtype=bool))
        if len(ok) == 0:
            raise ValueError("no allowed candidate")
        pm, pd, c = (np.asarray(a, dtype=np.float64) for a in (p_mean, p_draw, cost))
        pc = pm if p_choice is None else np.asarray(p_choice, dtype=np.float64)
        incumbent = int(ok[pick(pc[ok], c[ok])])
        if budget is not None:
            budget.count()
        if not self.explores(rng, may_explore, learnt):
            return Decision(incumbent, False)
        rest = self.open_challengers(ok, incumbent, pm, p_beat, budget)
        if len(rest) == 0:
            return Decision(incumbent, False)
        chosen = int(rest[pick(pd[rest], c[rest])])
        if budget is not None:
            budget.charge(incumbent, chosen, pm)
        return Decision(chosen, True)


@dataclass
class RegretBudget:
    """Conservative exploration (issue 13, `learning.explore_regret`): exploring may give up at most
    `rate` of expected quality per routed request, cumulatively. `routed` counts the pool's
    requests on this replica (`count`, one per decision, explored or not); `spent` sums, over its
    explored requests, the expected quality given up: max(0, P̄(incumbent) − P̄(explored)), the
    posterior means at the prompt (`spend`). A challenger is `affordable` while
    spent + its loss ≤ rate · routed, so at every moment the explorations so far cost, by the
    posterior's own estimate, at most `rate` per request routed — the quality of the whole
    traffic stays within `rate` of the greedy choice's (Wu et al., "Conservative Bandits", 2016,
    with the posterior mean as the baseline's estimate). Unused allowance carries over; `rate` 0:
    no budget (every challenger affordable). Per replica, like `Pending`."""

    rate: float = 0.0
    routed: int = 0
    spent: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"exploration regret rate must be in [0, 1], got {self.rate}")

    def count(self) -> None:
        """One more request routed by the pool."""
        self.routed += 1

    @property
    def allowance(self) -> float:
        """Expected quality exploring may still give up now (inf without a budget)."""
        if self.rate <= 0.0:
            return math.inf
        return self.rate * self.routed - self.spent

    def affordable(self, rows: npt.NDArray[np.int64], incumbent: int, p_mean: F64
                   ) -> npt.NDArray[np.int64]:
        """The candidates of `rows` whose expected loss against `incumbent` fits the allowance (the
        incumbent, and any candidate not below it, always do)."""
        if self.rate <= 0.0 or len(rows) == 0:
            return rows
        pm = np.asarray(p_mean, dtype=np.float64)
        out: npt.NDArray[np.int64] = rows[pm[incumbent] - pm[rows] <= max(self.allowance, 0.0)]
        return out

    def spend(self, loss: float) -> None:
        """Charge one exploration's expected loss (a gain costs nothing)."""
        self.spent += max(loss, 0.0)

    def charge(self, incumbent: int, explored: int, p_mean: F64) -> None:
        """Charge exploring candidate `explored` instead of `incumbent`: the fall of the posterior
        mean P(good) `p_mean` between them (`spend`)."""
        self.spend(float(p_mean[incumbent] - p_mean[explored]))


@dataclass
class TrafficMean:
    """The pool's typical prompt (exploration scope "traffic"): a running mean of the latents it
    routes, over the last ~`window` requests once that many have come (before, all of them). Per
    replica, like `Pending`; replicas serving like traffic hold like means."""

    window: int = 1000
    n: int = 0
    mean: F64 | None = None

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"traffic window must be >= 1, got {self.window}")

    def add(self, z: npt.ArrayLike) -> None:
        """One more routed prompt's latent."""
        zz = np.asarray(z, dtype=np.float64).ravel()
        self.n += 1
        if self.mean is None or self.mean.shape != zz.shape:
            self.mean, self.n = zz.copy(), 1
            return
        self.mean += (zz - self.mean) / min(self.n, self.window)

    def at(self, z: npt.ArrayLike) -> F64:
        """The typical latent (`z` itself before any was added)."""
        if self.mean is None:
            return np.asarray(z, dtype=np.float64).ravel()
        return self.mean


@dataclass
class Pending:
    """Explorations in flight whose feedback has not reached the posterior yet, per model (issue 13,
    delayed feedback). Over HTTP the learner sees feedback a few hundred requests late, so every
    exploration until then is chosen on the same stale posterior: `open` leaves out of the
    challengers a model with `cap` explorations in flight (0: no cap), so the share is not spent
    on one model before its first results are in. An exploration stops counting when a feedback
    on its model reaches the posterior (`release`: one per feedback applied, or per update seen in
    a reloaded state) or `timeout_s` after it was made (most requests are never rated). Times are
    the caller's clock (seconds, monotonic); nothing here reads one."""

    cap: int = 0
    timeout_s: float = 30.0
    started: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.cap < 0 or self.timeout_s <= 0:
            raise ValueError(f"pending cap must be >= 0 and timeout > 0, got {self.cap}, "
                             f"{self.timeout_s}")

    def count(self, model: str, now: float) -> int:
        """Explorations of `model` in flight at `now` (expired ones are dropped)."""
        times = self.started.get(model)
        if not times:
            return 0
        live = [t for t in times if now - t < self.timeout_s]
        if len(live) != len(times):
            self.started[model] = live
        return len(live)

    def open(self, rows: npt.NDArray[np.int64], names: Sequence[str], now: float
             ) -> npt.NDArray[np.int64]:
        """The candidates of `rows` (indices into `names`) below the cap (all of them without one)."""
        if self.cap <= 0:
            return rows
        keep = [i for i in rows.tolist() if self.count(names[i], now) < self.cap]
        return rows if len(keep) == len(rows) else np.asarray(keep, dtype=np.int64)

    def hold(self, model: str, now: float) -> None:
        """Count an exploration of `model` made at `now` (only with a cap: nothing to count without)."""
        if self.cap > 0:
            self.started.setdefault(model, []).append(now)

    def release(self, model: str, n: int = 1) -> None:
        """`n` feedbacks on `model` reached the posterior: the `n` oldest explorations stop counting."""
        times = self.started.get(model)
        if times and n > 0:
            del times[:n]
