"""Paired differences over runs of `bench/online_http.py` / `bench/online_gateway.py` (issue 13).

    python bench/online_paired.py FILE.json [FILE.json ...] [--boot 10000] [--json OUT]

Each file is one run (one seed): the non-exploring learner ("online") and its other variants on the
same stream. For every variant, the paired difference quality(online) − quality(variant) in points
of cumulative quality after the run's requests (`exploration_loss_points`; positive: the variant lost),
over the files: its mean, a t interval and a bootstrap (percentile) interval of the mean over
files, how many runs lost more than a point, and the variant's field quality at the end. A variant
named "online#2" (`--explore 0,0`: the same configuration served twice) gives the run-to-run noise
floor: what the difference is when nothing differs but timing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats


def intervals(diffs: list[float], boot: int, seed: int = 0) -> dict[str, Any]:
    """Mean, sample sd, 95% t interval and 95% bootstrap interval of the mean of `diffs`."""
    d = np.asarray(diffs, dtype=np.float64)
    out: dict[str, Any] = {"n": len(d), "mean": float(d.mean()), "diffs": [round(float(x), 2) for x in d],
                           "over_1_point": int((d > 1.0).sum())}
    if len(d) < 2:
        return out
    sd = float(d.std(ddof=1))
    half = float(stats.t.ppf(0.975, len(d) - 1)) * sd / np.sqrt(len(d))
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(boot, len(d)))].mean(axis=1)
    out.update({"sd": sd, "t95": [float(out["mean"] - half), float(out["mean"] + half)],
                "boot95": [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))]})
    return out


def collect(files: list[Path]) -> dict[str, dict[str, list[float]]]:
    """Per variant: its paired losses and end field qualities over the files."""
    out: dict[str, dict[str, list[float]]] = {}
    for f in files:
        variants = json.loads(f.read_text(encoding="utf-8"))["variants"]
        for name, v in variants.items():
            entry = out.setdefault(name, {"loss": [], "field_end": []})
            if "exploration_loss_points" in v:
                entry["loss"].append(float(v["exploration_loss_points"]))
            if "field_quality_end" in v:
                entry["field_end"].append(float(v["field_quality_end"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--boot", type=int, default=10_000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    found = collect(args.files)
    report = {}
    for name, entry in found.items():
        row: dict[str, Any] = {"field_end_mean": float(np.mean(entry["field_end"]))
                               if entry["field_end"] else None}
        if entry["loss"]:
            row["loss_points"] = intervals(entry["loss"], args.boot)
        report[name] = row
        loss = row.get("loss_points")
        text = "" if loss is None else (
            f"loss {loss['mean']:+.2f} pt (n={loss['n']}"
            + (f", t95 [{loss['t95'][0]:+.2f}, {loss['t95'][1]:+.2f}],"
               f" boot95 [{loss['boot95'][0]:+.2f}, {loss['boot95'][1]:+.2f}]" if "t95" in loss else "")
            + f", >1 pt in {loss['over_1_point']}) {loss['diffs']}")
        field_end = row["field_end_mean"]
        print(f"{name:28s} field end {field_end if field_end is None else round(field_end, 3)}  {text}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
