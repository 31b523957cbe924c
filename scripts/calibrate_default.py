"""Tune the default policy's knob on held-out outcomes, measure it on other held-out outcomes, and check
each rule's precision: the numbers behind `policies.default` in src/llmroute/data/default.yaml.

    python scripts/calibrate_default.py [--goal 0.96] [--policy default] [--calibrate-on calibrate]
                                        [--write]

Data: the demo's replay records (RouterBench test, bundled; the router artifact is never trained on
them) with the demo's pool (the 11 RouterBench models, prices fitted to their recorded costs, gpt-4
the reference). The prompts are split in halves by a salted hash (`llmroute.demo.frontier.split_of`):
the knob is tuned on one half (`calibrate` by default) and reported on the other. The policy is then
replayed through the real Engine (rules stage, classifier, chain), so the reported point is the one
`llmroute demo` reaches. Re-run it after rebuilding the artifact (`make router-artifact`) and paste
the printed value, or let `--write` put it into default.yaml and measure it there.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llmroute.config_text import default_config_text, parse_yaml
from llmroute.demo import frontier as fr
from llmroute.demo.config import BASELINE, demo_settings
from llmroute.demo.run import mean_outcomes
from llmroute.engine import Engine
from llmroute.providers.replay import ReplayBook, load_records


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


DEFAULT_YAML = Path(__file__).resolve().parent.parent / "src" / "llmroute" / "data" / "default.yaml"
#: The default policy's classifier stage line in default.yaml (what `--write` rewrites).
STAGE_LINE = re.compile(r"(\{router: classifier, willingness_to_pay: )([0-9.eE+-]+)(, threshold: 0\.0\})")


@dataclass(frozen=True)
class Lab:
    """The demo's pool and prompts, the policy's engine and its classifier's predictions."""

    engine: Engine
    table: fr.Replayed
    p: np.ndarray
    est: np.ndarray
    quality: dict[str, float]
    ledger: Path


def build_lab(policy: str) -> Lab:
    """The demo's settings (embedded defaults as they are on disk now) and the replay records."""
    book = ReplayBook(load_records())
    ledger = Path(tempfile.mkdtemp(prefix="llmroute-calibrate-"))
    quality = mean_outcomes(book)
    engine = Engine(demo_settings(ledger, quality))
    classifier = fr.classifier_of(engine.router(policy)[1])
    if classifier is None:
        raise SystemExit(f"policy {policy!r} has no classifier stage to tune")
    table = fr.Replayed.of_records(book.records, [s.name for s in engine.catalog if s.tier])
    p, est = fr.predictions(classifier, table)
    return Lab(engine, table, p, est, quality, ledger)


def halves(lab: Lab, tuned_on: str) -> list[tuple[str, np.ndarray]]:
    """(label, mask) for the tuning half, the held-out half and all prompts."""
    on = np.asarray([fr.split_of(t) == tuned_on for t in lab.table.texts], dtype=bool)
    return [(f"{tuned_on} half (tuned here)", on), ("held-out half (reported)", ~on),
            ("all", np.ones(lab.table.n, dtype=bool))]


def tune(lab: Lab, policy: str, on: np.ndarray, goal: float) -> fr.DefaultCalibration:
    """The classifier stage's setting reaching `goal` on the prompts `on`."""
    decided, fixed = fr.before_classifier(lab.engine.router(policy)[1], lab.engine, lab.table)
    tuned = fr.calibrate_default(lab.p[on], lab.est[on], lab.table.where(on), decided[on],
                                 fixed[on], BASELINE, goal)
    if tuned is None:
        raise SystemExit(f"no setting keeps {goal:.0%} of gpt-4's quality on those prompts")
    print(f"calibrated on {int(on.sum())} prompts (rules decide {int(decided[on].sum())} of them): "
          f"{tuned.calibration.params()} -> expected there "
          f"{fr.describe(tuned.point, lab.table.where(on).single(BASELINE))}")
    return tuned


def measure_all(lab: Lab, engine: Engine, policy: str, title: str, tuned_on: str
                ) -> list[dict[str, Any]]:
    """The policy's point on each half and on all prompts."""
    print(f"\n`{policy}` {title}, replayed through the Engine:")
    return [measure(engine, policy, lab.table.where(mask), lab.p[mask], lab.est[mask], label)
            for label, mask in halves(lab, tuned_on)]


def write_lambda(params: dict[str, Any]) -> float:
    """Rewrite λ in default.yaml's classifier stage (4 significant digits); the value written."""
    if set(params) != {"willingness_to_pay"}:
        raise SystemExit(f"--write handles one willingness_to_pay setting, not {params}")
    value = float(f"{params['willingness_to_pay']:.4g}")
    text = DEFAULT_YAML.read_text("utf-8")
    if len(STAGE_LINE.findall(text)) != 1:
        raise SystemExit(f"{DEFAULT_YAML}: expected one `{{router: classifier, willingness_to_pay: "
                         "N, threshold: 0.0}` line to rewrite")
    DEFAULT_YAML.write_text(STAGE_LINE.sub(lambda m: f"{m[1]}{value:g}{m[3]}", text), "utf-8")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--goal", type=float, default=0.96,
                        help="share of gpt-4's quality to keep on the calibration half")
    parser.add_argument("--policy", default="default")
    parser.add_argument("--calibrate-on", choices=("calibrate", "report"), default="calibrate")
    parser.add_argument("--write", action="store_true",
                        help="write the tuned λ into src/llmroute/data/default.yaml, then measure it")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args()
    lab = build_lab(args.policy)
    tuned = tune(lab, args.policy, halves(lab, args.calibrate_on)[0][1], args.goal)
    params = tuned.calibration.params()
    measure_all(lab, lab.engine, args.policy, "as shipped (default.yaml)", args.calibrate_on)
    defaults = parse_yaml(default_config_text(), "embedded defaults")["policies"]
    policies = {**defaults, args.policy: fr.with_classifier_params(defaults[args.policy], params)}
    tuned_engine = Engine(demo_settings(lab.ledger, lab.quality, extra={"policies": policies}))
    rows = measure_all(lab, tuned_engine, args.policy, "with the calibrated setting",
                       args.calibrate_on)
    alone = tuned.calibration.main.choose(lab.p, lab.est)
    for half in ("calibrate", "report"):
        mask = np.asarray([fr.split_of(t) == half for t in lab.table.texts], dtype=bool)
        report_rules(lab.engine, lab.table.where(mask), alone[mask], f"{half} half")
    print(f"\npaste into policies.{args.policy}'s classifier stage:")
    print("  " + json.dumps(params))
    if args.write:
        value = write_lambda(params)
        print(f"\nwrote willingness_to_pay: {value:g} into {DEFAULT_YAML}")
        rows = measure_all(lab, build_lab(args.policy).engine, args.policy, "as written",
                           args.calibrate_on)
    if args.json:
        args.json.write_text(json.dumps({"goal": args.goal, "params": params, "points": rows},
                                        indent=2), "utf-8")


if __name__ == "__main__":
    main()
