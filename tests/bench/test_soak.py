"""bench/soak.py's summary: first vs last window medians, the slope after the first window, the
outcome totals; and the stream reader's verdicts."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import soak


def samples(rss: list[float], every_s: float = 60.0) -> list[dict[str, Any]]:
    return [{"t_s": (i + 1) * every_s, "rss_mib": v, "fds": 20, "upstream_conns": 3,
             "other_fds": 17, "outcomes": {"ok": 9, "stream_cut": 1} if i % 2 else {"ok": 10}}
            for i, v in enumerate(rss)]


def test_a_flat_run_after_its_warm_up() -> None:
    rss = [70.0, 75.0, 80.0] + [80.0] * 57  # one hour of minutes
    summary = soak.summarize(samples(rss), 600)
    metric = summary["metrics"]["rss_mib"]
    assert (metric["first_median"], metric["last_median"], metric["max"]) == (80.0, 80.0, 80.0)
    assert metric["slope_per_h"] == pytest.approx(0.0)
    assert summary["metrics"]["fds"]["slope_per_h"] == pytest.approx(0.0)
    assert summary["metrics"]["other_fds"]["last_median"] == 17
    assert summary["requests"] == 600 and summary["outcomes"] == {"ok": 570, "stream_cut": 30}
    assert summary["answered_share"] == pytest.approx(0.95)


def test_a_leak_shows_as_a_slope() -> None:
    rss = [80.0 + i * 0.5 for i in range(60)]  # +0.5 MiB a minute
    metric = soak.summarize(samples(rss), 600)["metrics"]["rss_mib"]
    assert metric["slope_per_h"] == pytest.approx(30.0)
    assert metric["last_median"] - metric["first_median"] == pytest.approx(24.75)  # i 54 vs 4.5


def test_a_short_run_compares_its_thirds() -> None:
    summary = soak.summarize(samples([1.0] * 12, every_s=10), 600)
    assert summary["window_s"] == pytest.approx(40.0)
    assert soak.summarize([], 600) == {}
