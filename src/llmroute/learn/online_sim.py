"""Simulate learning online on a source the router was not trained on (issue 13).

    python -m llmroute.learn.online_sim [--data DIR] [--source NAME] [--requests 10000]
        [--feedback 0.2] [--explore 0.0,0.02,0.05] [--seed 0] [--json FILE] [--png FILE]
        [--lam L | --target T] [--prior-scale S] [--every N (20)] [--artifact PATH]
        [--strategy challenger|thompson] [--ability-var V (0)] [--shared S (0.25 exploring, else 0)]
        [--explore-at prompt|traffic] [--optimism K] [--shared-ability C (0)]

* The held-out source's records are split at random (`--seed`) in two halves: **in-domain train** and
  **field**. Training records sharing a normalised prompt or question with a field record are dropped
  (no prompt is both trained on and scored).
* **Offline router**: the bundled artifact (trained on RouterBench train + ZeroEval only, so it never
  saw mmlu-pro, llmrouter or routeprofile), restricted to the source's models: a model it knows (same
  name, or a `sources.ALIASES` spelling) keeps its profile; any other model gets the mean profile of all
  known models (`fit_profile` with no outcomes).
* **In-domain reference**: `fit_router` trained on the in-domain half (an upper reference).
* **Stream**: `--requests` prompts drawn with replacement from the field half (seeded); each is routed
  by the policy at one operating point (`--lam` λ, default 0 = the most likely model; or `--target`),
  its real outcome and cost are read from the data; a `--feedback` share of requests (seeded, the same
  requests for every variant) reports the observed quality, which updates `online.OnlineProfiles`
  (raters: 200 simulated users: the cap never binds, but a model's first feedbacks, each from a
  new rater, carry the rater's floor plus a share of the others' weight). Variants share the stream: offline
  (never updated), online with each `--explore` share (Thompson, `online.Exploration`), in-domain.
* Costs: a source's recorded costs where every field record has one for every model, else none
  (cost reported as 0). The policy's expected cost of a model is its mean recorded cost on the
  in-domain half (a price list's per-call figure), the same for every router.
* **Gap**: every `--every` requests (default 20) the online posterior (means) routes the whole field half;
  its mean real quality q(n) against the offline router's q_off and the in-domain router's q_in gives
  closed(n) = (q(n) − q_off) / (q_in − q_off). Requests to half the gap: the first n with
  closed(n) ≥ 0.5 ("first"), and the first n from which it stays ≥ 0.5 ("for good"). Feedback touched
  some field prompts; the posterior has K = 31 numbers per model, so it cannot memorise prompts.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from . import policy
from .online import ABILITY_VAR, STRATEGIES, Exploration, OnlineProfiles, Pick, shared_for
from .online_explore import SCOPES, TrafficMean
from .online_field import Setup, build_setup, pick_many
from .sources import load_sources

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

CHECKPOINTS: Final = (1000, 2000, 5000, 10000)
RATERS: Final = 200


@dataclass(frozen=True)
class Learner:
    """The online learner's knobs a simulation varies, as the `learning:` settings: the exploration
    strategy, `shared` (None: 0.25 when exploring, else 0), `at` (`explore_at`), `optimism` and
    `shared_ability`."""

    strategy: str = "challenger"
    shared: float | None = None
    at: str = "prompt"
    optimism: float = 0.0
    shared_ability: float = 0.0

    @classmethod
    def of(cls, args: argparse.Namespace) -> Learner:
        """From the command line's `--strategy --shared --explore-at --optimism --shared-ability`."""
        return cls(args.strategy, args.shared, args.explore_at, args.optimism, args.shared_ability)


#: The settings' defaults.
DEFAULT_LEARNER: Final = Learner()


@dataclass(frozen=True)
class Variant:
    """One simulated router on the stream."""

    name: str
    explore: float | None               # None: not learning (offline / in-domain)
    cumulative: dict[int, tuple[float, float]]   # n → (mean quality, mean cost) of the first n requests
    snapshots: list[tuple[int, float, float]]    # (n, field quality, field cost) of the posterior means
    explored: int = 0
    explored_quality: float = float("nan")
    shares: list[tuple[float, ...]] = field(default_factory=list)   # per snapshot: share to each model
    p_means: list[tuple[float, ...]] = field(default_factory=list)  # per snapshot: mean P(good) on the field
    feedbacks: tuple[int, ...] = ()                                  # feedbacks received per model


@dataclass(frozen=True)
class Report:
    """The simulation's numbers."""

    source: str
    requests: int
    feedback: float
    seed: int
    operating_point: str
    n_field: int
    models: tuple[str, ...]
    q_offline: float
    q_indomain: float
    c_offline: float
    c_indomain: float
    variants: list[Variant]
    half_gap_first: dict[str, int | None]
    half_gap_for_good: dict[str, int | None]
    exploration_loss_points: dict[str, float]
    has_cost: bool
    notes: tuple[str, ...]
    best_single: tuple[str, float, float] = ("", float("nan"), float("nan"))   # on the field
    seconds: float = 0.0


def make_pick(lam: float = 0.0, target: float | None = None) -> tuple[Pick, str]:
    """The policy at one operating point: by target when given, else by λ trade-off."""
    if target is not None:
        return (lambda p, c: policy.by_target(p, c, target).index), f"target {target}"
    return (lambda p, c: policy.by_tradeoff(p, c, lam).index), f"lambda {lam}"


def realised(choice: I64, quality: F64, cost: F64) -> tuple[float, float]:
    """Mean real quality and cost of `choice` per row."""
    rows = np.arange(len(choice))
    return float(quality[rows, choice].mean()), float(cost[rows, choice].mean())


def shares_of(choice: I64, models: int) -> tuple[float, ...]:
    """Share of the rows whose `choice` is each of `models` model indices."""
    return tuple(float(x) for x in np.bincount(choice, minlength=models) / max(len(choice), 1))


@dataclass(frozen=True)
class Stream:
    """One seeded stream: which field prompt each request asks (`idx`), which requests give
    feedback (`gives`) and from which of `RATERS` users (`raters`), all drawn from `seed`."""

    idx: I64
    gives: npt.NDArray[np.bool_]
    raters: I64

    @classmethod
    def draw(cls, prompts: int, requests: int, feedback: float, seed: int) -> Stream:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, prompts, requests)
        gives = rng.random(requests) < feedback
        return cls(idx, gives, rng.integers(0, RATERS, requests))


@dataclass(frozen=True)
class Scoring:
    """How a simulation scores the field: the policy (`pick` per request; `lam`/`target` over many
    prompts), the expected costs it weighs (N × M), the snapshot cadence and the checkpoints."""

    pick: Pick
    lam: float
    target: float | None
    est: F64
    every: int
    marks: tuple[int, ...]

    def choose(self, p_field: F64) -> I64:
        return pick_many(p_field, self.est, self.lam, self.target)

    def cumulative(self, q: F64, c: F64) -> dict[int, tuple[float, float]]:
        return {n: (float(q[:n].mean()), float(c[:n].mean())) for n in self.marks}


def simulate(setup: Setup, requests: int, feedback: float, explore: Sequence[float], seed: int,
             lam: float = 0.0, target: float | None = None, every: int = 250,
             learner: Learner = DEFAULT_LEARNER) -> list[Variant]:
    """Offline, online (each exploration share) and in-domain variants on one seeded stream, the
    online learner configured by `learner` (its `at`: the exploration scope, `online_explore.SCOPES`:
    the draw at the prompt, or at the stream's running mean latent)."""
    stream = Stream.draw(len(setup.z), requests, feedback, seed)
    idx = stream.idx
    marks = tuple(sorted({n for n in CHECKPOINTS if n <= requests} | {requests}))
    scoring = Scoring(make_pick(lam, target)[0], lam, target,
                      np.broadcast_to(setup.est_cost, setup.quality.shape), every, marks)
    p_off = setup.start.p_good_many(setup.z)
    off_choice = scoring.choose(p_off)
    off_field = realised(off_choice, setup.quality, setup.cost)
    qo, co = setup.quality[idx, off_choice[idx]], setup.cost[idx, off_choice[idx]]
    ind = setup.indomain_choice
    qi, ci = setup.quality[idx, ind[idx]], setup.cost[idx, ind[idx]]
    in_field = realised(ind, setup.quality, setup.cost)
    m = len(setup.models)
    off_share, in_share = shares_of(off_choice, m), shares_of(ind, m)
    off_p = tuple(float(x) for x in p_off.mean(axis=0))
    out = [Variant("offline", None, scoring.cumulative(qo, co),
                   [(n, *off_field) for n in [0, requests]], shares=[off_share, off_share],
                   p_means=[off_p, off_p]),
           Variant("in-domain", None, scoring.cumulative(qi, ci),
                   [(n, *in_field) for n in [0, requests]], shares=[in_share, in_share])]
    return out + [online_variant(setup, stream, share, seed, scoring, learner, out[0])
                  for share in explore]


def online_variant(setup: Setup, stream: Stream, share: float, seed: int, scoring: Scoring,
                   learner: Learner, offline: Variant) -> Variant:
    """One online learner with exploration `share` on `stream`, from the offline router's profiles;
    its snapshots, shares and mean P(good) begin with the `offline` variant's first (at request 0)."""
    requests, m = len(stream.idx), len(setup.models)
    state = OnlineProfiles.starting(setup.start.models, setup.start.means.copy(),
                                    setup.start.covs[0].copy(), rater_cap=setup.start.rater_cap,
                                    shared=shared_for(learner.shared, share),
                                    shared_ability=learner.shared_ability,
                                    rater_floor=setup.start.rater_floor,
                                    rater_share=setup.start.rater_share)
    chooser = Exploration(share, learner.strategy, at=learner.at)
    typical = TrafficMean()
    erng = np.random.default_rng([seed, 1])
    q, c = np.zeros(requests), np.zeros(requests)
    flags = np.zeros(requests, dtype=bool)
    snaps, shares, p_means = offline.snapshots[:1], offline.shares[:1], offline.p_means[:1]
    fed = np.zeros(m, dtype=np.int64)
    allowed = np.ones(m, dtype=bool)
    for t in range(requests):
        i = int(stream.idx[t])
        zi = setup.z[i]
        p = state.p_good(zi)
        if learner.at == "traffic":
            typical.add(zi)
        draw = state.thompson(typical.at(zi), erng) if share > 0 else p
        upper = state.p_upper(zi, learner.optimism) if learner.optimism > 0 else None
        d = chooser.decide(p, draw, setup.est_cost, allowed, scoring.pick, erng, p_choice=upper)
        q[t], c[t], flags[t] = setup.quality[i, d.index], setup.cost[i, d.index], d.explored
        if stream.gives[t]:
            state.update(setup.models[d.index], zi, q[t], 1.0,
                         rater=f"user-{int(stream.raters[t])}")
            fed[d.index] += 1
        if (t + 1) % scoring.every == 0 or t + 1 == requests:
            p_field = state.p_good_many(setup.z)
            choice = scoring.choose(p_field)
            snaps.append((t + 1, *realised(choice, setup.quality, setup.cost)))
            shares.append(shares_of(choice, m))
            p_means.append(tuple(float(x) for x in p_field.mean(axis=0)))
    name = "online" if share == 0 else f"online+explore {share:g}"
    return Variant(name, share, scoring.cumulative(q, c), snaps, int(flags.sum()),
                   float(q[flags].mean()) if flags.any() else float("nan"), shares, p_means,
                   tuple(int(x) for x in fed))


def half_gap(snaps: Sequence[tuple[int, float, float]], q_off: float, q_in: float
             ) -> tuple[int | None, int | None]:
    """Requests until the snapshots' quality first closes half the gap, and until it does for good."""
    gap = q_in - q_off
    if gap <= 0:
        return None, None
    closed = [(n, (q - q_off) / gap >= 0.5) for n, q, _ in snaps]
    first = next((n for n, ok in closed if ok), None)
    for_good = None
    for n, ok in reversed(closed):
        if not ok:
            break
        for_good = n
    return first, for_good


def report(setup: Setup, source: str, requests: int, feedback: float, explore: Sequence[float],
           seed: int, lam: float = 0.0, target: float | None = None, every: int = 250,
           learner: Learner = DEFAULT_LEARNER) -> Report:
    """Run `simulate` and summarise it."""
    start = time.monotonic()
    variants = simulate(setup, requests, feedback, explore, seed, lam, target, every, learner)
    by = {v.name: v for v in variants}
    _, q_off, c_off = by["offline"].snapshots[0]
    _, q_in, c_in = by["in-domain"].snapshots[0]
    first: dict[str, int | None] = {}
    good: dict[str, int | None] = {}
    loss: dict[str, float] = {}
    base = next((v for v in variants if v.explore == 0), None)
    for v in variants:
        if v.explore is None:
            continue
        first[v.name], good[v.name] = half_gap(v.snapshots, q_off, q_in)
        if base is not None and v is not base:
            loss[v.name] = 100 * (base.cumulative[requests][0] - v.cumulative[requests][0])
    _, point = make_pick(lam, target)
    means = setup.quality.mean(axis=0)
    j = int(np.argmax(means))
    best = (setup.models[j], float(means[j]), float(setup.cost[:, j].mean()))
    return Report(source, requests, feedback, seed, point, len(setup.z), setup.models, q_off, q_in,
                  c_off, c_in, variants, first, good, loss, setup.has_cost, setup.notes, best,
                  time.monotonic() - start)


# ---------------------------------------------------------------------- building from data


# ---------------------------------------------------------------------- output


def table_lines(rep: Report) -> list[str]:
    """The cumulative table and the gap summary, as text."""
    marks = sorted(rep.variants[0].cumulative)
    head = "| router | " + " | ".join(f"{n:,}" for n in marks) + " |"
    lines = [f"{rep.source}: {rep.requests} requests, feedback {rep.feedback:.0%}, {rep.operating_point}, "
             f"seed {rep.seed}, field {rep.n_field} prompts, {len(rep.models)} models",
             "cumulative mean quality" + (" / mean cost (USD per 1k requests)" if rep.has_cost else ""),
             head, "|---" * (len(marks) + 1) + "|"]
    for v in rep.variants:
        cells = [f"{q:.3f}" + (f" / {c * 1000:.4f}" if rep.has_cost else "") for q, c in
                 (v.cumulative[n] for n in marks)]
        lines.append(f"| {v.name} | " + " | ".join(cells) + " |")
    lines.append(f"field quality of the routing policy: offline {rep.q_offline:.3f}, in-domain "
                 f"{rep.q_indomain:.3f} (gap {rep.q_indomain - rep.q_offline:+.3f}); best single model "
                 f"{rep.best_single[0]} {rep.best_single[1]:.3f}"
                 + (f" at {rep.best_single[2] * 1000:.4f} USD per 1k" if rep.has_cost else ""))
    if rep.has_cost:
        lines.append(f"field cost per 1k requests: offline {rep.c_offline * 1000:.4f}, in-domain "
                     f"{rep.c_indomain * 1000:.4f}")
    for v in rep.variants:
        if v.explore is None:
            continue
        end = v.snapshots[-1]
        extra = (f"; explored {v.explored} requests (quality {v.explored_quality:.3f}), "
                 f"cumulative loss vs online {rep.exploration_loss_points.get(v.name, 0.0):+.2f} points"
                 if v.explore else "")
        at_cost = f" at {end[2] * 1000:.4f} USD per 1k" if rep.has_cost else ""
        lines.append(f"{v.name}: field quality after {end[0]} requests {end[1]:.3f}{at_cost}; "
                     f"half the gap first at {rep.half_gap_first[v.name]}, "
                     f"for good from {rep.half_gap_for_good[v.name]}{extra}")
    lines.extend(rep.notes)
    return lines


def save_png(rep: Report, path: Path) -> None:
    """Field quality of each variant's posterior against requests (needs matplotlib: `report` extra)."""
    import matplotlib  # type: ignore[import-not-found, unused-ignore]

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.axhline(rep.q_offline, color="grey", linestyle="--", label="offline")
    ax.axhline(rep.q_indomain, color="black", linestyle=":", label="in-domain")
    ax.axhline((rep.q_offline + rep.q_indomain) / 2, color="grey", linewidth=0.5, label="half the gap")
    for v in rep.variants:
        if v.explore is not None:
            ax.plot([s[0] for s in v.snapshots], [s[1] for s in v.snapshots], label=v.name)
    ax.set_xlabel("requests")
    ax.set_ylabel("field quality of the current posterior")
    ax.set_title(f"learning online on {rep.source} ({rep.feedback:.0%} feedback, {rep.operating_point})")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m llmroute.learn.online_sim", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--source", default="llmrouter")
    parser.add_argument("--requests", type=int, default=10000)
    parser.add_argument("--feedback", type=float, default=0.2)
    parser.add_argument("--explore", default="0.0,0.02,0.05")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lam", type=float, default=0.0)
    parser.add_argument("--target", type=float, default=None)
    parser.add_argument("--prior-scale", type=float, default=1.0)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--strategy", choices=STRATEGIES, default="challenger")
    parser.add_argument("--ability-var", type=float, default=ABILITY_VAR)
    parser.add_argument("--shared", type=float, default=None)
    parser.add_argument("--explore-at", choices=SCOPES, default="prompt")
    parser.add_argument("--optimism", type=float, default=0.0, help="learning.optimism")
    parser.add_argument("--shared-ability", type=float, default=0.0, help="learning.shared_ability")
    parser.add_argument("--artifact", default=None)
    parser.add_argument("--json", default=None)
    parser.add_argument("--png", default=None)
    args = parser.parse_args(argv)
    from . import artifact

    start = time.monotonic()
    router = artifact.load(args.artifact) if args.artifact else artifact.load_default()
    records = load_sources(args.data, [args.source])[args.source]
    setup = build_setup(records, router, args.seed, args.lam, args.target, args.prior_scale,
                        args.ability_var)
    rep = report(setup, args.source, args.requests, args.feedback,
                 [float(s) for s in args.explore.split(",") if s.strip()], args.seed, args.lam,
                 args.target, args.every, Learner.of(args))
    for line in table_lines(rep):
        print(line)
    print(f"total {time.monotonic() - start:.0f} s (simulation {rep.seconds:.0f} s)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(asdict(rep), indent=1, default=str), encoding="utf-8")
    if args.png:
        save_png(rep, Path(args.png))


if __name__ == "__main__":
    main()
