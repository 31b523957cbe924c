"""The latency sketch kept in rollups: a log-bucketed histogram with 1 % relative accuracy
(DDSketch's mapping, without its bucket collapsing).

A latency v >= `MIN_LATENCY_S` falls in bin i = ceil(log_γ v), the bin (γ^(i-1), γ^i], with
γ = (1 + α)/(1 − α); the bin's value 2γ^i/(γ + 1) is within α·v of every v in it. Smaller values
(0 and anything under a microsecond) share `ZERO_BIN`, whose value is 0. A histogram is a mapping
bin -> count: histograms of disjoint sets add bin by bin (the sketch is mergeable), so per-hour and
per-day histograms summed over a window are that window's histogram.

Error bound: the nearest-rank percentile read from a histogram (`value_at_rank`) is the value of
the bin that holds the exact k-th smallest latency, so it is within `ALPHA` (1 %) of the exact
nearest-rank percentile that `reports.aggregate.nearest_rank` computes, relative to it; below a
microsecond the answer is 0. A value that floating point puts on the other side of a bin boundary
stays within the bound (a boundary is within α of both neighbouring bins' values).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping

#: Relative accuracy of every percentile read from a histogram.
ALPHA = 0.01
GAMMA = (1 + ALPHA) / (1 - ALPHA)
_LOG_GAMMA = math.log(GAMMA)
#: Latencies below this (seconds) are counted in `ZERO_BIN` and read back as 0.
MIN_LATENCY_S = 1e-6
#: The bin of latencies under `MIN_LATENCY_S` (far below every real bin: log_γ 1e-6 ≈ -691).
ZERO_BIN = -1_000_000

Histogram = dict[int, int]


def bin_of(latency_s: float) -> int:
    """The bin that counts `latency_s`."""
    if not latency_s >= MIN_LATENCY_S:  # also NaN
        return ZERO_BIN
    return math.ceil(math.log(latency_s) / _LOG_GAMMA)


def value_of(bin_index: int) -> float:
    """The value reported for every latency in the bin."""
    if bin_index == ZERO_BIN:
        return 0.0
    return 2 * GAMMA ** bin_index / (GAMMA + 1)


def histogram(latencies: Iterable[float]) -> Histogram:
    """The histogram of some latencies."""
    found: Histogram = {}
    for latency in latencies:
        index = bin_of(latency)
        found[index] = found.get(index, 0) + 1
    return found


def merge_into(target: Histogram, other: Mapping[int, int]) -> Histogram:
    """Add `other`'s counts to `target` (in place) and return it."""
    for index, count in other.items():
        target[index] = target.get(index, 0) + count
    return target


def size(hist: Mapping[int, int]) -> int:
    """How many latencies a histogram counts."""
    return sum(hist.values())


def value_at_rank(hist: Mapping[int, int], rank: int) -> float | None:
    """The value of the bin holding the `rank`-th smallest latency (1-based); None when the
    histogram counts fewer than `rank` latencies or rank < 1."""
    if rank < 1:
        return None
    seen = 0
    for index in sorted(hist):
        seen += hist[index]
        if seen >= rank:
            return value_of(index)
    return None


def nearest_rank(hist: Mapping[int, int], p: int) -> float | None:
    """The nearest-rank p-th percentile (k = ceil(p·n/100), at least 1), within `ALPHA`."""
    n = size(hist)
    if n == 0:
        return None
    return value_at_rank(hist, max(1, -(-p * n // 100)))


#: How a histogram is stored (one row per hour or day, dimension and value): its nonzero bins in
#: order, each a little-endian int32 bin and int64 count, 12 bytes (no padding).
_PACKED = struct.Struct("<iq")


def pack(hist: Mapping[int, int]) -> bytes:
    """A histogram's stored bytes (bins with a zero count left out)."""
    items = sorted((index, count) for index, count in hist.items() if count)
    return b"".join(_PACKED.pack(index, count) for index, count in items)


def unpack(blob: bytes | bytearray | memoryview | None) -> Histogram:
    """The histogram of stored bytes (None or empty: no latencies)."""
    if not blob:
        return {}
    return dict(_PACKED.iter_unpack(blob))
