"""bench/gateway/peers.py: a bench run's settings overrides reach the llmroute gateway it launches,
and nothing else of the harness's `LLMROUTE*` environment does."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

GATEWAY_BENCH = str(Path(__file__).resolve().parents[2] / "bench" / "gateway")
sys.path.insert(0, GATEWAY_BENCH)
try:
    import peers
finally:
    sys.path.remove(GATEWAY_BENCH)


def test_overrides_are_renamed_and_the_rest_is_left_out() -> None:
    environ = {"BENCH_LLMROUTE__LEDGER__ENABLED": "false", "LLMROUTE__SERVER__HOST": "0.0.0.0",
               "BENCH_OTHER": "1", "PATH": "/bin"}
    assert peers.settings_overrides(environ) == {"LLMROUTE__LEDGER__ENABLED": "false"}


def test_the_llmroute_launch_carries_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_LLMROUTE__LEDGER__IDLE_WRITES", "false")
    monkeypatch.setenv("LLMROUTE__LEDGER__ENABLED", "false")  # the harness's own: dropped
    monkeypatch.setattr(peers, "_version", lambda python, dist: "0")
    launch = peers.launch_llmroute(9, 8, tmp_path, 1)
    assert launch.env["LLMROUTE__LEDGER__IDLE_WRITES"] == "false"
    assert "LLMROUTE__LEDGER__ENABLED" not in launch.env
    assert launch.env["LLMROUTE_CONFIG"] == str(tmp_path / "llmroute.yaml")
