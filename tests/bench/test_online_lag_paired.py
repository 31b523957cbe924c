"""`bench/online_lag_paired.py` (issue 13): paired exploration costs over `online_lag.py` runs, and
the variant syntax of `online_lag.py` for the exploration bounds."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import online_lag
import online_lag_paired


def test_costs_are_paired_per_run_across_files(tmp_path: Path) -> None:
    def run(q: float, explored: int = 0, half: int | None = 500) -> dict[str, object]:
        return {"cumulative": q, "explored": explored, "half_gap": half}

    a = {"0": {"0": run(0.50), "0.05": run(0.48, 500, None)},
         "1": {"0": run(0.55), "0.05": run(0.56, 480, 2500)}}
    b = {"0": {"0": run(0.40), "0.05": run(0.40, 490)}}
    files = [tmp_path / "a.json", tmp_path / "b.json"]
    for f, d in zip(files, (a, b), strict=True):
        f.write_text(json.dumps(d), encoding="utf-8")
    found = online_lag_paired.costs(files, "0")
    assert found["0.05"]["cost"] == pytest.approx([2.0, -1.0, 0.0])
    assert found["0.05"]["half"] == [0.0, 0.0, 1.0]      # None and 2,500 are not within 2,000
    assert found["0"]["cost"] == [0.0, 0.0, 0.0]


def test_a_variant_parses_the_bounds() -> None:
    v = online_lag.Variant.parse("0.05,beat=0.1,gap=0.2,decay=500,xshared=0")
    assert (v.share, v.beat, v.gap, v.decay, v.xshared) == (0.05, 0.1, 0.2, 500.0, False)
    plain = online_lag.Variant.parse("0.02")
    assert (plain.beat, plain.gap, plain.decay, plain.xshared) == (0.0, 1.0, 0.0, True)
