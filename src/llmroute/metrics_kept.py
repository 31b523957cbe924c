"""The gateway's per-request metric updates kept in plain Python numbers between collections
(issue 17: `GatewayMetrics.observe` cost ~55 k instructions a request, most of it prometheus_client's
per-call checks and locks: ~3 k per `inc`).

`Kept` is a labelled metric's table of children by label values (each resolved once, as `.labels()`
would give it). In a single process each child is fronted by a `KeptCount` or `KeptHistogram`, which
adds into a float (a histogram: its sum and per-bucket counts) with the same arithmetic, in the same
order, as the child's own `inc` / `observe`; `Flush`, registered first in the registry, writes every
kept number into its child before each collection (a scrape, `get_sample_value`), so what is
collected is exactly what the child would hold. With prometheus_client's multiprocess mode
(`--workers N`: each worker's values in shared files that another worker's scrape reads), the
children are used directly, as before.

The kept numbers are the only writers of their children: every update of these metrics goes
through `GatewayMetrics.observe`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Generic, Protocol, TypeVar

from prometheus_client import Counter, Histogram
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

M = TypeVar("M", bound=MetricWrapperBase)
T = TypeVar("T")


class Incremented(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class Observed(Protocol):
    def observe(self, amount: float) -> None: ...


class Flushed(Protocol):
    def flush(self) -> None: ...


class KeptCount:
    """A counter child's value, kept here; `flush` writes it into the child."""

    __slots__ = ("_child", "value")

    def __init__(self, child: Counter) -> None:
        self._child = child
        self.value: float = child._value.get()

    def inc(self, amount: float = 1) -> None:
        if amount < 0:  # Counter.inc's check, with its message
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        self.value += amount

    def flush(self) -> None:
        self._child._value.set(self.value)


class KeptHistogram:
    """A histogram child's sum and per-bucket counts (each observation in the first bucket whose
    upper bound holds it, as `Histogram.observe` counts it), kept here."""

    __slots__ = ("_bounds", "_child", "counts", "sum")

    def __init__(self, child: Histogram) -> None:
        self._child = child
        self._bounds: Sequence[float] = child._upper_bounds
        self.sum: float = child._sum.get()
        self.counts: list[float] = [bucket.get() for bucket in child._buckets]

    def observe(self, amount: float) -> None:
        self.sum += amount
        for i, bound in enumerate(self._bounds):
            if amount <= bound:
                self.counts[i] += 1
                break

    def flush(self) -> None:
        child = self._child
        child._sum.set(self.sum)
        for bucket, count in zip(child._buckets, self.counts, strict=True):
            bucket.set(count)


class Kept(Generic[M, T]):
    """A labelled metric's children by label values, each resolved once and fronted by `front`."""

    def __init__(self, metric: M, front: Callable[[M], T]) -> None:
        self.metric: M = metric
        self._front: Callable[[M], T] = front
        self._known: dict[tuple[str, ...], T] = {}

    def __call__(self, *values: str) -> T:
        child = self._known.get(values)
        if child is None:
            child = self._known[values] = self._front(self.metric.labels(*values))
        return child


def counts(metric: Counter, flushed: list[Flushed] | None) -> Kept[Counter, Incremented]:
    """`metric`'s children, kept (each added to `flushed`) or, without `flushed`, direct."""
    if flushed is None:
        return Kept(metric, _direct_count)

    def kept(child: Counter) -> Incremented:
        front = KeptCount(child)
        flushed.append(front)
        return front

    return Kept(metric, kept)


def histograms(metric: Histogram, flushed: list[Flushed] | None) -> Kept[Histogram, Observed]:
    """`metric`'s children, kept (each added to `flushed`) or, without `flushed`, direct."""
    if flushed is None:
        return Kept(metric, _direct_histogram)

    def kept(child: Histogram) -> Observed:
        front = KeptHistogram(child)
        flushed.append(front)
        return front

    return Kept(metric, kept)


def _direct_count(child: Counter) -> Incremented:
    return child


def _direct_histogram(child: Histogram) -> Observed:
    return child


class Flush(Collector):
    """Registered before the metrics: writes every kept number into its child when the registry
    is collected; collects nothing itself."""

    def __init__(self, flushed: list[Flushed]) -> None:
        self._flushed = flushed

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        for kept in list(self._flushed):
            kept.flush()
        return []
