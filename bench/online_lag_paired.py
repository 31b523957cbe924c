"""Paired exploration costs over `bench/online_lag.py` runs (issue 13), and the decision rule of
"5% exploration at ≤ 1 point" in docs/benchmarks.md.

    python bench/online_lag_paired.py FILE.json [FILE.json ...] [--base 0] [--current 0.05]
        [--boot 10000]

Each file maps seed → variant → run (one lag per file). Per variant over all (file, seed) runs: the
cost c = 100 · (cumulative quality of `--base` − the variant's), its mean, t and bootstrap 95%
intervals (`online_paired.intervals`), runs with c > 1, mean explored requests, runs whose
posterior closes half the gap within 2,000 requests, and the paired difference with `--current`
(c_variant − c_current; < 0: the variant cost less).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from online_paired import intervals


def costs(files: list[Path], base: str) -> dict[str, dict[str, list[float]]]:
    """Per variant: cost, explored and half-gap-within-2,000 (1/0) per run, in one order."""
    out: dict[str, dict[str, list[float]]] = {}
    for f in files:
        for rows in json.loads(f.read_text(encoding="utf-8")).values():
            b = rows[base]["cumulative"]
            for name, r in rows.items():
                e = out.setdefault(name, {"cost": [], "explored": [], "half": []})
                e["cost"].append(100.0 * (b - r["cumulative"]))
                e["explored"].append(float(r["explored"]))
                half = r.get("half_gap")
                e["half"].append(1.0 if half is not None and half <= 2000 else 0.0)
    return out


def fmt(x: dict[str, Any]) -> str:
    return (f"{x['mean']:+.2f} t95 [{x['t95'][0]:+.2f}, {x['t95'][1]:+.2f}] "
            f"boot95 [{x['boot95'][0]:+.2f}, {x['boot95'][1]:+.2f}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--base", default="0")
    parser.add_argument("--current", default="0.05")
    parser.add_argument("--boot", type=int, default=10_000)
    args = parser.parse_args()
    found = costs(args.files, args.base)
    cur = np.asarray(found[args.current]["cost"])
    base_half = sum(found[args.base]["half"])
    for name, e in found.items():
        if name == args.base:
            print(f"{name:22s} half-gap ≤ 2,000 in {int(base_half)}/{len(e['half'])}")
            continue
        c = intervals(e["cost"], args.boot)
        vs = intervals(list(np.asarray(e["cost"]) - cur), args.boot) if name != args.current else None
        explored = float(np.mean(e["explored"]))
        eligible = (explored >= 200 and sum(e["half"]) >= base_half and c["mean"] <= 1.0
                    and c["boot95"][1] <= 1.0)
        print(f"{name:22s} n={c['n']} cost {fmt(c)} >1pt {c['over_1_point']:2d} "
              f"explored {explored:5.0f} half≤2k {int(sum(e['half']))}"
              + ("" if vs is None else f" | vs current {fmt(vs)}")
              + (" ELIGIBLE" if eligible else ""))


if __name__ == "__main__":
    main()
