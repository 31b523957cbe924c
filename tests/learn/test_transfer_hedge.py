"""Cached transfer scores, the nested splits and the length hedge (issue 13)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llmroute.learn import transfer_cache, transfer_hedge
from llmroute.learn.sources import load_sources
from llmroute.learn.transfer import Pair

from .test_transfer import data_dir  # noqa: F401  (the fixture)

PAIR = Pair("s", "w", 0.8, 0.4, "test")


def _set(router: np.ndarray, length: np.ndarray, qs: np.ndarray) -> transfer_hedge.PairSet:
    return transfer_hedge.PairSet("x", "src", PAIR, np.log1p(length), router, qs, np.zeros(len(qs)))


def _length_wins(seed: int, n: int = 300) -> transfer_hedge.PairSet:
    """The strong model wins on long prompts; the router is noise."""
    rng = np.random.default_rng(seed)
    length = rng.integers(10, 5000, n).astype(float)
    return _set(rng.normal(size=n), length, (length > np.median(length)).astype(float))


def _router_wins(seed: int, n: int = 300) -> transfer_hedge.PairSet:
    """The router knows exactly where the strong model wins; length is unrelated."""
    rng = np.random.default_rng(seed)
    qs = (rng.random(n) < 0.5).astype(float)
    return _set(qs + rng.normal(0, 0.1, n), rng.integers(10, 5000, n).astype(float), qs)


@pytest.mark.parametrize("blend", list(transfer_hedge.BLENDS))
def test_blend_endpoints_are_the_router_and_the_length_router(blend: str) -> None:
    ps = _length_wins(0)
    b = transfer_hedge.BLENDS[blend]
    assert transfer_hedge.hedged_apgr(ps, b, 0.0) == pytest.approx(ps.apgr(ps.router))
    assert transfer_hedge.hedged_apgr(ps, b, 1.0) == pytest.approx(ps.apgr(np.exp(ps.log_length)))


@pytest.mark.parametrize("blend", list(transfer_hedge.BLENDS))
def test_the_weight_follows_whichever_signal_the_nested_sets_reward(blend: str) -> None:
    b = transfer_hedge.BLENDS[blend]
    assert transfer_hedge.choose_weight([_length_wins(s) for s in range(3)], b) >= 0.8
    assert transfer_hedge.choose_weight([_router_wins(s) for s in range(3)], b) <= 0.2
    assert transfer_hedge.choose_weight([], b) == 0.0


def test_inner_splits_train_on_neither_the_outer_nor_the_held_out_source(data_dir: Path) -> None:  # noqa: F811
    sources = load_sources(data_dir)
    splits = transfer_cache.inner_splits(sources)
    n = len([s for s in sources.values() if s])
    assert len(splits) == n * (n - 1) // 2
    for split in splits:
        a, b = split.source.split("+")
        assert {r.source for r in split.test} == {a, b}
        assert not {a, b} & {r.source for r in split.train}
        gone = set().union(*(r.texts for r in [*sources[a], *sources[b]]))
        assert not any(r.texts & gone for r in split.train)


def test_cache_round_trip_and_report(data_dir: Path, tmp_path: Path,  # noqa: F811
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cache"
    args = ["--data", str(data_dir), "--out", str(out)]
    transfer_cache.main([*args, "--only", "routerbench/"])
    transfer_cache.main([*args, "--inner", "--only", "routerbench+"])
    outer = sorted(out.glob("outer__*.npz"))
    assert [p.name for p in outer] == ["outer__routerbench_arc-challenge.npz", "outer__routerbench_mbpp.npz"]
    # one fit per two sources, each scoring both: routerbench>T and T>routerbench
    assert len(list(out.glob("inner__routerbench>*.npz"))) == 4
    assert len(list(out.glob("inner__*>routerbench.npz"))) == 4
    nested = transfer_cache.load(out / "inner__routerbench>zeroeval.npz")
    assert nested.source == "zeroeval" and set(nested.tasks) == {"math-l5", "crux"}
    s = transfer_cache.load(outer[1])
    assert s.name == "routerbench/mbpp" and set(s.tasks) == {"mbpp"}
    assert s.p.shape == s.quality.shape == (len(s.tasks), len(s.models))
    assert "gpt-4-1106-preview" in s.models and ((s.p >= 0) & (s.p <= 1)).all()
    mtime = outer[0].stat().st_mtime_ns
    transfer_cache.main([*args, "--only", "routerbench/"])          # cached: not refitted
    assert outer[0].stat().st_mtime_ns == mtime
    capsys.readouterr()
    transfer_hedge.main(["--cache", str(out), "--json", str(tmp_path / "h.json")])
    printed = capsys.readouterr().out
    assert "| routerbench/mbpp |" in printed and "router vs length-only:" in printed
    assert (tmp_path / "h.json").exists()


def _scored(name: str, source: str, seed: int) -> transfer_cache.Scored:
    rng = np.random.default_rng(seed)
    n = 40
    quality = np.stack([np.ones(n), (rng.random(n) < 0.4).astype(float)], axis=1)
    return transfer_cache.Scored(name, source, ("t1",) * 20 + ("t2",) * 20,
                                 rng.integers(10, 900, n).astype(float), ("s", "w"),
                                 rng.random((n, 2)), quality, 100, 0)


def test_nested_sets_of_a_source_never_hold_its_own_records() -> None:
    inner = [_scored("a>b", "b", 0), _scored("b>a", "a", 1), _scored("a>c", "c", 2)]
    nested = transfer_hedge.nested_sets(inner, "a")
    assert {ps.source for ps in nested} == {"b", "c"}
    assert {ps.name for ps in nested} == {"a>b", "a>b/t1", "a>b/t2", "a>c", "a>c/t1", "a>c/t2"}
    assert all(ps.source != "a" for ps in nested)
