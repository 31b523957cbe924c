"""Learning online on the held-out public MMLU prompts (issue 13): `online_sim` on RouteLLM's
gpt-4-1106-preview vs Mixtral-8x7B outcomes (bench/data/routellm-mmlu, read by `public_eval`).

    python -m llmroute.learn.public_online [--data bench/data/routellm-mmlu] [--requests 5000]
        [--feedback 0.2] [--explore 0,0.05] [--seeds 0,1,2] [--every 20] [--artifact PATH] [--json FILE]
        [--strategy challenger|thompson] [--ability-var V (0)] [--shared S (0.25 exploring, else 0)]
        [--shared-ability C (0)]
        [--explore-at prompt|traffic] [--optimism K]

* Records: `mmlu_records` turns `public_eval`'s loaded rows into `online_sim`'s `SourcedRecord`s,
  outcomes under the artifact's names for the two models (`public_eval.STRONG` / `WEAK`).
* Costs: the CSVs carry none, so each prompt's cost per model is the artifact's own price estimate
  (its per-character prices × prompt length and predicted answer length), as in `public_eval` — a
  price-list estimate, not a bill. The policy's expected cost of a model is its mean over the
  in-domain half (`online_field.build_setup`).
* Routers: the offline router is the bundled artifact, never trained on these prompts (MMLU is kept out
  of the shared training data). The in-domain reference is `fit_router` trained on the other half of
  these MMLU prompts (`online_field.split_source`). Online: the artifact's profiles updated by 20%
  feedback on a stream drawn with replacement from the field half.
* Operating points: the default policy's λ (`public_eval.default_lambda`) and λ = 0.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

from . import artifact
from .data import DataError, OutcomeRecord
from .model import RouterModel
from .online import ABILITY_VAR, STRATEGIES
from .online_explore import SCOPES
from .online_field import build_setup
from .online_sim import DEFAULT_LEARNER, Learner, Report, Variant, half_gap, report
from .public_eval import DEFAULT_DATA, HONESTY, STRONG, WEAK, Outcomes, default_lambda, load_dir
from .sources import SourcedRecord, normalise

SOURCE: Final = "routellm-mmlu"
MARKS: Final = (0, 500, 1000, 2000, 5000)


def mmlu_records(subjects: Mapping[str, Outcomes], router: RouterModel) -> list[SourcedRecord]:
    """One record per prompt: both models' 0/1 outcomes and the artifact's cost estimate for each."""
    out: list[SourcedRecord] = []
    for subject, data in subjects.items():
        _, est = router.predict_many(data.prompts, [STRONG, WEAK])
        for i, prompt in enumerate(data.prompts):
            rec = OutcomeRecord(
                id=f"{subject}-{i}", prompt=prompt, dataset=subject,
                outcomes={STRONG: float(data.q_strong[i]), WEAK: float(data.q_weak[i])},
                cost_usd={STRONG: float(est[i, 0]), WEAK: float(est[i, 1])})
            out.append(SourcedRecord(rec, SOURCE, subject, frozenset({normalise(prompt)})))
    return out


@dataclass(frozen=True)
class Run:
    """`online_sim`'s report at one λ, with what the table needs from the field."""

    report: Report
    lam: float
    all_strong_cost: float             # field mean cost of always-gpt-4 (USD)
    real: tuple[float, float]          # field accuracy of gpt-4, Mixtral


def run(records: Sequence[SourcedRecord], router: RouterModel, lam: float, requests: int,
        feedback: float, explore: Sequence[float], seed: int, every: int,
        ability_var: float = ABILITY_VAR, learner: Learner = DEFAULT_LEARNER) -> Run:
    """`online_sim` at one λ on these records."""
    setup = build_setup(records, router, seed, lam, ability_var=ability_var)
    rep = report(setup, SOURCE, requests, feedback, explore, seed, lam, None, every, learner)
    strong, weak = setup.models.index(STRONG), setup.models.index(WEAK)
    means = setup.quality.mean(axis=0)
    return Run(rep, lam, float(setup.cost[:, strong].mean()), (float(means[strong]), float(means[weak])))


def _at(v: Variant, n: int) -> int:
    """Index of the snapshot at `n` requests (the last one for the non-learning variants)."""
    ns = [s[0] for s in v.snapshots]
    return ns.index(n) if n in ns else len(ns) - 1


def utility_snapshots(v: Variant, lam: float) -> list[tuple[int, float, float]]:
    """`v`'s snapshots with quality replaced by the policy's objective, quality − λ·cost (USD)."""
    return [(n, q - lam * c, c) for n, q, c in v.snapshots]


def table_lines(result: Run, marks: Sequence[int] = MARKS) -> list[str]:
    """Per router and mark: field quality / cost as a share of all-gpt-4's / share to gpt-4 /
    quality − λ·cost; then the mean P(good) the learning routers hold and the half-gap counts."""
    rep, lam, all_strong, real = result.report, result.lam, result.all_strong_cost, result.real
    strong, weak = rep.models.index(STRONG), rep.models.index(WEAK)
    by = {v.name: v for v in rep.variants}
    shown = [n for n in marks if n <= rep.requests]
    lines = [f"{rep.operating_point}: field quality / cost as a share of all-gpt-4's / share to gpt-4 / "
             "quality − λ·cost",
             "| router | " + " | ".join(f"after {n:,}" if n else "start" for n in shown) + " |",
             "|---" * (len(shown) + 1) + "|"]
    for v in rep.variants:
        cells = []
        for n in shown:
            k = _at(v, n)
            _, q, c = v.snapshots[k]
            cells.append(f"{q:.3f} / {c / all_strong:.0%} / {v.shares[k][strong]:.0%} / {q - lam * c:.3f}")
        lines.append(f"| {v.name} | " + " | ".join(cells) + " |")
    u_off = utility_snapshots(by["offline"], lam)[0][1]
    u_in = utility_snapshots(by["in-domain"], lam)[0][1]
    lines.append(f"real field accuracy gpt-4 {real[0]:.3f}, Mixtral {real[1]:.3f}; gap offline → in-domain: "
                 f"quality {rep.q_indomain - rep.q_offline:+.3f}, quality − λ·cost {u_in - u_off:+.3f}")
    for v in rep.variants:
        if v.explore is None:
            continue
        first, good = half_gap(utility_snapshots(v, lam), u_off, u_in)
        probs = ", ".join(f"{n:,}: {v.p_means[_at(v, n)][strong]:.2f} / {v.p_means[_at(v, n)][weak]:.2f}"
                          for n in shown)
        lines.append(f"{v.name}: mean P(good) gpt-4 / Mixtral on the field at {probs}; feedbacks "
                     f"gpt-4 {v.feedbacks[strong]}, Mixtral {v.feedbacks[weak]}; half the gap in "
                     f"quality − λ·cost first at {first}, for good from {good}; explored {v.explored}")
    return lines


def summary_lines(results: Sequence[Run]) -> list[str]:
    """One row per λ and router: quality / cost share / share to gpt-4 / quality − λ·cost at the last
    request, one cell per seed (each seed also re-splits in-domain train / field)."""
    seeds = sorted({r.report.seed for r in results})
    lines = ["after the last request, per seed: quality / cost as a share of all-gpt-4's / share to gpt-4 "
             "/ quality − λ·cost",
             "| λ | router | " + " | ".join(f"seed {s}" for s in seeds) + " |",
             "|---|---" + "|---" * len(seeds) + "|"]
    cells: dict[tuple[float, str], list[str]] = {}
    for r in results:
        strong = r.report.models.index(STRONG)
        for v in r.report.variants:
            _, q, c = v.snapshots[-1]
            cells.setdefault((r.lam, v.name), []).append(
                f"{q:.3f} / {c / r.all_strong_cost:.0%} / {v.shares[-1][strong]:.0%} / {q - r.lam * c:.3f}")
    lines.extend(f"| {lam:g} | {name} | " + " | ".join(row) + " |" for (lam, name), row in cells.items())
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m llmroute.learn.public_online", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--feedback", type=float, default=0.2)
    parser.add_argument("--explore", default="0,0.05")
    parser.add_argument("--seeds", default="0", help="full tables for the first, a summary for all")
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--artifact", type=Path, default=None)
    parser.add_argument("--strategy", choices=STRATEGIES, default="challenger")
    parser.add_argument("--ability-var", type=float, default=ABILITY_VAR)
    parser.add_argument("--shared", type=float, default=None)
    parser.add_argument("--explore-at", choices=SCOPES, default="prompt")
    parser.add_argument("--optimism", type=float, default=0.0, help="learning.optimism")
    parser.add_argument("--shared-ability", type=float, default=0.0, help="learning.shared_ability")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    start = time.monotonic()
    try:
        subjects = load_dir(args.data)
        router = artifact.load_default() if args.artifact is None else artifact.load(args.artifact)
        lams = (default_lambda(), 0.0)
    except (DataError, artifact.ArtifactError) as exc:
        raise SystemExit(f"public_online: {exc}") from exc
    missing = [m for m in (STRONG, WEAK) if m not in router.models]
    if missing:
        raise SystemExit(f"public_online: the artifact does not know {', '.join(missing)}")
    records = mmlu_records(subjects, router)
    explore = [float(s) for s in args.explore.split(",") if s.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    reports = [run(records, router, lam, args.requests, args.feedback, explore, seed, args.every,
                   args.ability_var, Learner.of(args))
               for seed in seeds for lam in lams]
    print(f"_{HONESTY}; the in-domain reference is trained on the other half of these prompts_")
    for result in reports[:len(lams)]:
        print("\n".join(table_lines(result)))
        print("\n".join(result.report.notes))
    if len(seeds) > 1:
        print("\n".join(summary_lines(reports)))
    print(f"total {time.monotonic() - start:.0f} s")
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in reports], indent=1, default=str) + "\n",
                             encoding="utf-8")


if __name__ == "__main__":
    main()
