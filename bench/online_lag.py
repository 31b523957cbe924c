"""`learn.online_sim` with delayed feedback (issue 13): the in-process simulation, but each feedback
reaches the posterior `--lag` requests after its request, applied in batches every `--batch`
requests (the learner on its timer over HTTP sees feedback a few hundred requests late). Pure and
seeded: what over HTTP is timing here is a fixed delay, so variants compare without timing noise.

    python bench/online_lag.py [--data ../shared/data] [--source llmrouter] [--artifact PATH]
        [--seeds 0,1,2] [--lag 300] [--batch 50] [--requests 10000] [--feedback 0.2]
        [--variants "0;0.02;0.05;0.05,pending=2,timeout=600;0.05,shared=0"] [--json FILE]

A variant is `share[,shared=S][,pending=N][,timeout=R][,strategy=thompson][,gap=D][,beat=P]
[,decay=N0][,xshared=0]`: the exploration share, the shared term (unset: `online.shared_for`), the
cap of explorations in flight per model (`online_explore.Pending`; 0 = none) and its timeout in
requests (an exploration in flight is released when a feedback on its model is applied, or after
that many requests); `Exploration`'s bounds (`gap`: skip challengers more than D below the
incumbent's P(good); `beat`: skip those whose posterior probability of beating it is below P;
`decay`: the share fades as share · N0 / (N0 + learnt feedbacks)); `xshared=0`: feedback on explored
requests leaves the shared term alone. `half_gap` is the first snapshot (every 250 requests) at
which the posterior means' field quality closes half the offline → in-domain gap.
Unknown models get the mean profile, as in `online_sim` (not the gateway's catalog priors).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from llmroute.learn import artifact as artifacts
from llmroute.learn.online import Exploration, OnlineProfiles, shared_for
from llmroute.learn.online_explore import Pending
from llmroute.learn.online_field import Setup, build_setup, pick_many
from llmroute.learn.online_sim import Stream, make_pick
from llmroute.learn.sources import load_sources

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Variant:
    share: float
    shared: float | None = None
    pending: int = 0
    timeout: float = 600.0
    strategy: str = "challenger"
    gap: float = 1.0
    beat: float = 0.0
    decay: float = 0.0
    xshared: bool = True

    @classmethod
    def parse(cls, text: str) -> Variant:
        head, *rest = text.split(",")
        kw = dict(part.split("=") for part in rest)
        return cls(float(head), float(kw["shared"]) if "shared" in kw else None,
                   int(kw.get("pending", 0)), float(kw.get("timeout", 600)),
                   kw.get("strategy", "challenger"), float(kw.get("gap", 1.0)),
                   float(kw.get("beat", 0.0)), float(kw.get("decay", 0.0)),
                   kw.get("xshared", "1") != "0")


def run(setup: Setup, v: Variant, seed: int, requests: int, feedback: float, lag: int,
        batch: int) -> dict[str, Any]:
    stream = Stream.draw(len(setup.z), requests, feedback, seed)   # as online_sim.simulate
    idx, gives, raters = stream.idx, stream.gives, stream.raters
    pick, _ = make_pick(0.0, None)
    state = OnlineProfiles.starting(setup.start.models, setup.start.means.copy(),
                                    setup.start.covs[0].copy(), rater_cap=setup.start.rater_cap,
                                    shared=shared_for(v.shared, v.share),
                                    rater_floor=setup.start.rater_floor,
                                    rater_share=setup.start.rater_share)
    chooser = Exploration(v.share, v.strategy, v.gap, v.beat, v.decay)
    pending = Pending(v.pending, v.timeout)
    erng = np.random.default_rng([seed, 1])
    names = list(setup.models)
    queue: list[tuple[int, int, int, float, bool]] = []
    q = np.zeros(requests)
    explored = 0
    est = np.broadcast_to(setup.est_cost, setup.quality.shape)
    rows = np.arange(len(setup.z))

    def field_quality() -> tuple[float, I64]:
        choice = pick_many(state.p_good_many(setup.z), est, 0.0, None)
        return float(setup.quality[rows, choice].mean()), choice

    q_off = field_quality()[0]
    q_in = float(setup.quality[rows, setup.indomain_choice].mean())
    half: int | None = None
    for t in range(requests):
        i = int(idx[t])
        zi = setup.z[i]
        p = state.p_good(zi)
        draw = state.thompson(zi, erng) if v.share > 0 else p
        ok = np.arange(len(names))
        incumbent = int(pick(p, setup.est_cost))
        j = incumbent
        took = False
        if chooser.explores(erng, True, float(state.n_updates.sum())):
            beat = state.beat_probability(zi, incumbent) if v.beat > 0 else None
            rest = chooser.within(chooser.challengers(ok, incumbent), incumbent, p, beat)
            rest = pending.open(rest, names, float(t))
            if len(rest):
                j = int(rest[pick(draw[rest], setup.est_cost[rest])])
                pending.hold(names[j], float(t))
                explored += 1
                took = True
        q[t] = setup.quality[i, j]
        if gives[t]:
            queue.append((t, i, j, float(q[t]), took))
        if (t + 1) % batch == 0:
            due = [e for e in queue if e[0] + lag <= t]
            queue = [e for e in queue if e[0] + lag > t]
            for s, i2, j2, y, x in due:
                state.update(names[j2], setup.z[i2], y, 1.0, rater=f"user-{int(raters[s])}",
                             shared=v.xshared or not x)
                pending.release(names[j2])
        if half is None and (t + 1) % 250 == 0 and q_in > q_off \
                and field_quality()[0] - q_off >= 0.5 * (q_in - q_off):
            half = t + 1
    field_q, choice = field_quality()
    counts = np.bincount(choice, minlength=len(names)) / len(choice)
    top = {names[k]: round(float(counts[k]), 3) for k in np.argsort(-counts)[:3]}
    return {"cumulative": float(q.mean()), "field_end": field_q, "explored": explored,
            "half_gap": half, "field_shares_top3": top}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--source", default="llmrouter")
    parser.add_argument("--artifact", default="out/held-out/router-without-llmrouter.json")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--lag", type=int, default=300)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--feedback", type=float, default=0.2)
    parser.add_argument("--variants", default="0;0.02;0.05")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    router = artifacts.load(args.artifact)
    records = load_sources(args.data, [args.source])[args.source]
    variants = [Variant.parse(s) for s in args.variants.split(";") if s.strip()]
    out: dict[str, dict[str, Any]] = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        setup = build_setup(records, router, seed, 0.0, None, 1.0, 0.0)
        rows: dict[str, dict[str, Any]] = {}
        for v, text in zip(variants, args.variants.split(";"), strict=True):
            rows[text] = run(setup, v, seed, args.requests, args.feedback, args.lag, args.batch)
        base = rows[args.variants.split(";")[0]]["cumulative"]
        for text, r in rows.items():
            r["loss_points"] = 100 * (base - r["cumulative"])
            print(f"seed {seed} lag {args.lag} {text:36s} cumulative {r['cumulative']:.3f} "
                  f"field end {r['field_end']:.3f} explored {r['explored']:4d} half {r['half_gap']} "
                  f"loss {r['loss_points']:+.2f} {r['field_shares_top3']}", flush=True)
        out[str(seed)] = rows
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
