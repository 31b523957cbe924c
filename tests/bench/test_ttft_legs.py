"""bench/gateway/ttft_legs.py's join (issue 17): each first token the client saw is traced back to
the gateway's body send before it, the upstream bytes that send relayed, and the upstream's write."""

from __future__ import annotations

import sys
from pathlib import Path

GATEWAY_BENCH = str(Path(__file__).resolve().parents[2] / "bench" / "gateway")
sys.path.insert(0, GATEWAY_BENCH)
try:
    import ttft_legs
finally:
    sys.path.remove(GATEWAY_BENCH)

US = 1_000


def test_each_token_is_joined_to_the_marks_just_before_it() -> None:
    # two streams: the role chunk's bytes and send, then 20 ms later the first content chunk's
    chunks = [1_000 * US, 21_000 * US, 101_000 * US, 121_000 * US]
    marks = [("d", 1_050 * US), ("b", 1_100 * US), ("b", 1_120 * US),
             ("d", 21_060 * US), ("b", 21_160 * US),
             ("d", 101_040 * US), ("b", 101_090 * US),
             ("d", 121_070 * US), ("b", 121_200 * US), ("b", 121_300 * US)]
    tokens = [21_210 * US, 121_250 * US]
    assert ttft_legs.legs(chunks, marks, tokens) == [(60.0, 100.0, 50.0), (70.0, 130.0, 50.0)]


def test_a_token_with_nothing_before_it_is_skipped() -> None:
    assert ttft_legs.legs([5 * US], [("d", 6 * US), ("b", 7 * US)], [6 * US]) == []
    assert ttft_legs.legs([9 * US], [("d", 6 * US), ("b", 7 * US)], [8 * US]) == []
