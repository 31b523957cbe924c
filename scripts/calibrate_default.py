"""Tune the default policy's knob on held-out outcomes, measure it on other held-out outcomes, and check
each rule's precision: the numbers behind `policies.default` in src/llmroute/data/default.yaml.

    python scripts/calibrate_default.py [--goal 0.96] [--policy default] [--calibrate-on calibrate]

Data: the demo's replay records (RouterBench test, bundled; the router artifact is never trained on
them) with the demo's pool (the 11 RouterBench models, prices fitted to their recorded costs, gpt-4
the reference). The prompts are split in halves by a salted hash (`llmroute.demo.frontier.split_of`):
the knob is tuned on one half (`calibrate` by default) and reported on the other. The policy is then
replayed through the real Engine (rules stage, classifier, chain), so the reported point is the one
`llmroute demo` reaches. Re-run it after rebuilding the artifact and paste the printed values.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from llmroute.demo import frontier as fr
from llmroute.demo.config import BASELINE, demo_settings
from llmroute.demo.run import mean_outcomes
from llmroute.engine import Engine
from llmroute.providers.replay import ReplayBook, load_records
from llmroute.settings import default_config_text, parse_yaml


def report_rules(engine: Engine, table: fr.Replayed, choice: np.ndarray, title: str) -> None:
    """The seed rules table, each rule on the prompts where it is the first to match."""
    print(f"\nrules ({title}, {table.n} prompts; classifier at the calibrated setting beside each):")
    print(f"  {'rule':16} {'tier':8} {'fired':>5} {'precision':>9}  {'rule: quality, $/1k':>20}  "
          f"{'classifier: quality, $/1k':>26}")
    for r in fr.rule_checks(engine.settings.rules, engine, table, choice):
        if not r.fired:
            print(f"  {r.name:16} {r.tier:8} {0:>5} {'—':>9}  (never the first match here)")
            continue
        print(f"  {r.name:16} {r.tier:8} {r.fired:>5} {r.precision:>9.0%}  "
              f"{r.rule.quality:>10.3f}, {r.rule.cost * 1000:>7.3f}  "
              f"{r.classifier.quality:>16.3f}, {r.classifier.cost * 1000:>7.3f}")


def measure(engine: Engine, policy: str, table: fr.Replayed, p: np.ndarray, est: np.ndarray,
            label: str) -> dict[str, Any]:
    """The policy's point on `table` against the reference and the classifier's hull there."""
    point = table.point(fr.policy_choice(engine, policy, table), policy)
    ref = table.single(BASELINE)
    cost, quality = fr.relative(point, ref)
    gap = fr.hull_gap(point, fr.classifier_curve(p, est, table))
    print(f"  {label:28} {table.n:4} prompts: {quality:.1%} of gpt-4's quality at {cost:.1%} of its "
          f"cost; {gap / ref.quality:.1%} of gpt-4's quality under the classifier's hull there")
    return {"split": label, "prompts": table.n, "quality_kept": quality, "cost_share": cost,
            "hull_gap": gap / ref.quality}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--goal", type=float, default=0.96,
                        help="share of gpt-4's quality to keep on the calibration half")
    parser.add_argument("--policy", default="default")
    parser.add_argument("--calibrate-on", choices=("calibrate", "report"), default="calibrate")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args()
    book = ReplayBook(load_records())
    ledger = Path(tempfile.mkdtemp(prefix="llmroute-calibrate-"))
    quality = mean_outcomes(book)
    engine = Engine(demo_settings(ledger, quality))
    _, router = engine.router(args.policy)
    classifier = fr.classifier_of(router)
    if classifier is None:
        raise SystemExit(f"policy {args.policy!r} has no classifier stage to tune")
    pool = [spec.name for spec in engine.catalog if spec.tier]
    table = fr.Replayed.of_records(book.records, pool)
    p, est = fr.predictions(classifier, table)
    decided, fixed = fr.before_classifier(router, engine, table)
    on = np.asarray([fr.split_of(t) == args.calibrate_on for t in table.texts], dtype=bool)
    tuned = fr.calibrate_default(p[on], est[on], table.where(on), decided[on], fixed[on], BASELINE,
                                 args.goal)
    if tuned is None:
        raise SystemExit(f"no setting keeps {args.goal:.0%} of gpt-4's quality on the "
                         f"{args.calibrate_on} half")
    params = tuned.calibration.params()
    print(f"calibrated on the {args.calibrate_on} half ({int(on.sum())} prompts; rules decide "
          f"{int(decided[on].sum())} of them): {params} -> expected there "
          f"{fr.describe(tuned.point, table.where(on).single(BASELINE))}")
    defaults = parse_yaml(default_config_text(), "embedded defaults")["policies"]
    policies = {**defaults, args.policy: fr.with_classifier_params(defaults[args.policy], params)}
    tuned_engine = Engine(demo_settings(ledger, quality, extra={"policies": policies}))
    halves = ((f"{args.calibrate_on} half (tuned here)", on), ("held-out half (reported)", ~on),
              ("all", np.ones(table.n, dtype=bool)))
    print(f"\n`{args.policy}` as shipped (default.yaml), replayed through the Engine:")
    for label, mask in halves:
        measure(engine, args.policy, table.where(mask), p[mask], est[mask], label)
    print(f"\n`{args.policy}` replayed through the Engine with the calibrated setting:")
    rows = [measure(tuned_engine, args.policy, table.where(mask), p[mask], est[mask], label)
            for label, mask in halves]
    alone = tuned.calibration.main.choose(p, est)
    for half in ("calibrate", "report"):
        mask = np.asarray([fr.split_of(t) == half for t in table.texts], dtype=bool)
        report_rules(engine, table.where(mask), alone[mask], f"{half} half")
    print(f"\npaste into policies.{args.policy}'s classifier stage:")
    print("  " + json.dumps(params))
    if args.json:
        args.json.write_text(json.dumps({"goal": args.goal, "params": params, "points": rows},
                                        indent=2), "utf-8")


if __name__ == "__main__":
    main()
