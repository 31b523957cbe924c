"""Exploration for learning online (issue 13): with a configurable share, route a request by a
Thompson draw of P(good) instead of the posterior mean (`online.OnlineProfiles.thompson`). Pure: the
random source is the caller's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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

    def __post_init__(self) -> None:
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"exploration share must be in [0, 1], got {self.share}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"exploration strategy must be one of {', '.join(STRATEGIES)}, "
                             f"got {self.strategy!r}")

    def explores(self, rng: np.random.Generator, may_explore: bool = True) -> bool:
        """Whether this request explores: a coin with probability `share` (drawn only when
        exploring is on and allowed)."""
        return may_explore and self.share > 0.0 and bool(rng.random() < self.share)

    def challengers(self, ok: npt.NDArray[np.int64], incumbent: int) -> npt.NDArray[np.int64]:
        """The candidates an explored request may go to: all of `ok` for "thompson"; for
        "challenger", all but the `incumbent` (the mean's choice) unless it is the only one."""
        if self.strategy == "thompson" or len(ok) < 2:
            return ok
        rest: npt.NDArray[np.int64] = ok[ok != incumbent]
        return rest

    def decide(self, p_mean: F64, p_draw: F64, cost: F64, allowed: BoolArray, pick: Pick,
               rng: np.random.Generator, may_explore: bool = True) -> Decision:
        """The choice among `allowed` candidates (arrays over candidates): `pick` on the posterior-mean
        P(good), or — exploring — on the Thompson draw `p_draw` among `challengers`."""
        ok = np.flatnonzero(np.asarray(allowed, dtype=bool))
        if len(ok) == 0:
            raise ValueError("no allowed candidate")
        pm, pd, c = (np.asarray(a, dtype=np.float64) for a in (p_mean, p_draw, cost))
        incumbent = int(ok[pick(pm[ok], c[ok])])
        if not self.explores(rng, may_explore):
            return Decision(incumbent, False)
        rest = self.challengers(ok, incumbent)
        return Decision(int(rest[pick(pd[rest], c[rest])]), True)
