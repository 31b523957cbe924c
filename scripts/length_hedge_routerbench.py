"""What a length hedge would do to the shipped router on RouterBench test (issue 13).

    python scripts/length_hedge_routerbench.py [--data ../shared/data] [--artifact src/llmroute/data/router]

The artifact (trained on every source, never on RouterBench test) scored on RouterBench test:

* Pair (gpt-4-1106-preview vs Mixtral-8x7B): APGR of the router's score, of the length-only router and
  of the z-blend `transfer_hedge.z_blend` at each w of its grid.
* Serving (every model, both knobs swept exactly, the artifact check's hull readings): the multi-model
  analogue a serving path would need, since serving ranks many models by P(good) and cost, not a
  pair's score: logit P'(m good) = logit P(m good) + w · z(log length) · s_m, where s_m is model m's
  standardised mean logit P(good) (stronger models gain on long prompts, weaker ones lose). z's mean and
  deviation and s_m come from RouterBench TRAIN prompts (inputs only); w in logit units.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import numpy.typing as npt

from llmroute.learn import artifact, policy
from llmroute.learn.data import OutcomeTable, load_records
from llmroute.learn.evaluate_quick import STRONG, Curve, hull_readings
from llmroute.learn.model import RouterModel
from llmroute.learn.transfer import tie_averaged_apgr
from llmroute.learn.transfer_hedge import GRID, z_blend

F64 = npt.NDArray[np.float64]
WEAK = "mistralai/mixtral-8x7b-instruct-v0.1"
SERVING_W = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
REPO = Path(__file__).resolve().parent.parent


def _logit(p: F64) -> F64:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    out: F64 = np.log(q / (1 - q))
    return out


def hedge_many(p: F64, log_length: F64, w: float, mu: float, sd: float, strength: F64) -> F64:
    """P(good) with each model's logit moved by w · z(log length) · strength (see the docstring)."""
    z = (log_length - mu) / sd
    out: F64 = 1 / (1 + np.exp(-(_logit(p) + w * z[:, None] * strength[None, :])))
    return out


def curve_of(p: F64, est: F64, table: OutcomeTable) -> Curve:
    """Both knobs swept exactly on `table`'s outcomes (as `evaluate_quick.router_curve`)."""
    points = (policy.sweep_tradeoff(p, est, table.quality, table.cost)
              + policy.sweep_target(p, est, table.quality, table.cost))
    j = table.models.index(STRONG)
    return Curve(policy.frontier(points), float(table.cost[:, j].mean()), float(table.quality[:, j].mean()))


def main() -> None:
    """Print the pair and serving readings for each w."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--artifact", type=Path, default=REPO / "src" / "llmroute" / "data" / "router")
    args = parser.parse_args()
    model: RouterModel = artifact.load(args.artifact)
    records = load_records(args.data / "routerbench" / "test.jsonl")
    train_prompts = [r.prompt for r in load_records(args.data / "routerbench" / "train.jsonl")]
    known = [m for m in OutcomeTable.of(records).models if m in model.models]
    table = OutcomeTable.of(records, known).complete()
    sub = model.select(known)
    p, est = sub.predict_many(table.prompts, table.models)
    train_log = np.log1p([len(t) for t in train_prompts])
    mu, sd = float(train_log.mean()), float(train_log.std())
    strength_logit = _logit(sub.predict_many(train_prompts, table.models)[0]).mean(axis=0)
    strength = (strength_logit - strength_logit.mean()) / strength_logit.std()
    log_length = np.log1p([len(t) for t in table.prompts])
    weak = next(m for m in table.models if m in (WEAK, "mistralai/mixtral-8x7b-chat"))
    i, j = table.models.index(STRONG), table.models.index(weak)
    qs, qw = table.quality[:, i], table.quality[:, j]
    router = p[:, i] - p[:, j]
    print(f"RouterBench test: {len(table.prompts)} prompts, {len(known)} models")
    print(f"pair {STRONG} / {weak}: router APGR {tie_averaged_apgr(router, qs, qw):.3f}, "
          f"length-only {tie_averaged_apgr(np.exp(log_length), qs, qw):.3f}")
    print("  z-blend: " + ", ".join(
        f"w={w:.1f} {tie_averaged_apgr(z_blend(router, log_length, w), qs, qw):.3f}" for w in GRID))
    print("serving (hull, fractions of gpt-4's quality / cost): w | q@15% | q@30% | cost for 95% | pair APGR")
    for w in SERVING_W:
        hp = hedge_many(p, log_length, w, mu, sd, strength)
        h = hull_readings(curve_of(hp, est, table))
        print(f"  {w:.2f} | {h['quality_at_15pct_cost']:.4f} | {h['quality_at_30pct_cost']:.4f} | "
              f"{h['cost_for_95pct_quality']:.4f} | {tie_averaged_apgr(hp[:, i] - hp[:, j], qs, qw):.3f}")


if __name__ == "__main__":
    main()
