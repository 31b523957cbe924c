"""The noise floor of the online benches (issue 13): a repeated exploration share is served as its
own variant ("online#2"), and `online_paired.py` turns runs into a paired difference with its
intervals over runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import online_gateway
import online_paired


def test_a_repeated_share_is_its_own_variant() -> None:
    taken: list[str] = []
    for share in (0.0, 0.0, 0.02, 0.0, 0.02):
        taken.append(online_gateway.variant_name(share, taken))
    assert taken == ["online", "online#2", "online+explore 0.02", "online#3",
                     "online+explore 0.02#2"]


def test_paired_losses_and_their_intervals(tmp_path: Path) -> None:
    files = []
    for i, loss in enumerate([0.5, -1.0, 2.5, 1.2]):
        path = tmp_path / f"run{i}.json"
        path.write_text(json.dumps({"variants": {
            "online": {"field_quality_end": 0.5},
            "online#2": {"exploration_loss_points": loss, "field_quality_end": 0.5}}}))
        files.append(path)
    found = online_paired.collect(files)
    assert found["online#2"]["loss"] == [0.5, -1.0, 2.5, 1.2]
    out = online_paired.intervals(found["online#2"]["loss"], boot=2000)
    assert out["n"] == 4 and abs(out["mean"] - 0.8) < 1e-12 and out["over_1_point"] == 2
    assert out["t95"][0] < out["boot95"][0] <= 0.8 <= out["boot95"][1] < out["t95"][1]
