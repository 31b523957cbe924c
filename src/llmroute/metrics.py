"""Prometheus metrics of one app, fed from the same ledger entries (one source of truth): requests,
errors, fallbacks, latency, time to first token, tokens, cost and savings, per model, tier, policy
and key; response-cache lookups and what hits saved; attempts skipped by an open breaker
(`llmroute_upstream_attempts{result="cooldown"}`); plus the ledger writer's health. Each app has
its own registry (no globals).

With `--workers N`, `llmroute serve` sets PROMETHEUS_MULTIPROC_DIR before the workers start: each
worker's values then live in files there, and a scrape (whichever worker answers it) adds up every
worker's (prometheus_client's multiprocess mode)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.multiprocess import MultiProcessCollector

from .ledger.entry import LedgerEntry
from .ledger.writer import WriterStats
from .metrics_kept import Flush, Flushed, Incremented, Kept, Observed, counts, histograms

#: The environment variable naming the directory of multiprocess values (set by `llmroute serve`).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

LABELS = ("model", "tier", "policy", "key")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
CONTENT_TYPE = CONTENT_TYPE_LATEST
M = TypeVar("M", bound=MetricWrapperBase)


class Children(Generic[M]):
    """A labelled metric's children by label values, each resolved once: `.labels()` validates the
    values and takes the metric's lock on every call, a dict lookup does not. (prometheus_client
    keeps every child it made until `remove`/`clear`, which nothing here calls: the same objects.)"""

    def __init__(self, metric: M):
        self.metric = metric
        self._known: dict[tuple[str, ...], M] = {}

    def __call__(self, *values: str) -> M:
        child = self._known.get(values)
        if child is None:
            child = self._known[values] = self.metric.labels(*values)
        return child


class GatewayMetrics:
    """The gateway's counters and histograms."""

    def __init__(self, stats: Callable[[], WriterStats | None] = lambda: None, *,
                 keep: bool | None = None):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        #: One process: the per-request numbers are kept in plain floats and written into the
        #: children before each collection (`metrics_kept`); shared across workers: direct.
        if keep is None:
            keep = not os.environ.get(MULTIPROC_ENV)
        self._flushed: list[Flushed] | None = [] if keep else None
        if self._flushed is not None:
            r.register(Flush(self._flushed))  # first: flushes before the metrics are collected
        self.requests = Counter("llmroute_requests", "Requests by outcome",
                                (*LABELS, "status"), registry=r)
        self.errors = Counter("llmroute_errors", "Failed requests by error type",
                              ("type", "code"), registry=r)
        self.attempts = Counter("llmroute_upstream_attempts", "Upstream attempts by result",
                                ("model", "result"), registry=r)
        self.fallbacks = Counter("llmroute_fallbacks", "Requests answered by a model other than the "
                                 "first one tried", LABELS, registry=r)
        self.latency = Histogram("llmroute_request_latency_seconds", "Whole-request latency",
                                 ("model", "tier"), buckets=LATENCY_BUCKETS, registry=r)
        self.ttft = Histogram("llmroute_time_to_first_token_seconds", "Streams: time to first "
                              "chunk", ("model",), buckets=LATENCY_BUCKETS, registry=r)
        self.tokens = Counter("llmroute_tokens", "Tokens", ("model", "kind"), registry=r)
        self.cost = Counter("llmroute_cost_usd", "Cost in USD", LABELS, registry=r)
        self.baseline = Counter("llmroute_baseline_cost_usd", "What the baseline model would have "
                                "cost", LABELS, registry=r)
        self.unpriced = Counter("llmroute_unpriced_requests", "Answered requests with no known "
                                "cost", ("model",), registry=r)
        self.cache = Counter("llmroute_cache_lookups", "Response-cache lookups by result (hit, "
                             "semantic, miss, bypass)", ("result",), registry=r)
        self.cache_saved = Counter("llmroute_cache_saved_usd", "What response-cache hits saved "
                                   "(the replaced upstream calls' cost)", ("model",), registry=r)
        self._stats = stats
        self.queue = Gauge("llmroute_ledger_queue_depth", "Ledger entries waiting to be written",
                           registry=r, multiprocess_mode="livesum")
        self.spooled = Gauge("llmroute_ledger_spooled", "Ledger entries written to the spool "
                             "(store down or queue full)", registry=r, multiprocess_mode="livesum")
        self._children = _Labelled(self, self._flushed)
        #: (model, tier, policy, key, status) -> the children every such request updates.
        self._rows: dict[tuple[str, ...], _Row] = {}

    def observe(self, entry: LedgerEntry) -> None:
        """Count one finished request."""
        c = self._children
        model = entry.model or "-"
        status = entry.status
        key = (model, entry.tier or "-", entry.policy or "-", entry.key_name or "-", status)
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = _Row.of(c, key[:4], status)
        row.requests.inc()
        if status == "error":
            c.errors(entry.error_type or "-", entry.error_code or "-").inc()
        attempts = entry.attempts
        first = attempts[0] if len(attempts) == 1 else None
        if first is not None and first.error_kind is None and first.model == model \
                and not first.skipped and not first.router:
            # the common request: one try, of the answering model, that succeeded: its attempt
            # child is kept on the row (resolved at its first such request: a child made is
            # shown), and it is no fallback (`LedgerEntry.fallback` says False)
            answered = row.answered
            if answered is None:
                answered = row.answered = c.attempts(model, "ok")
            answered.inc()
        else:
            for attempt in attempts:
                c.attempts(attempt.model, attempt.error_kind or "ok").inc()
            if entry.fallback:
                c.fallbacks(*key[:4]).inc()
        row.latency.observe(entry.latency_s)
        if entry.ttft_s is not None:
            c.ttft(model).observe(entry.ttft_s)
        tokens = row.tokens  # by TOKEN_KINDS
        if entry.input_tokens:
            tokens[0].inc(entry.input_tokens)
        if entry.output_tokens:
            tokens[1].inc(entry.output_tokens)
        if entry.cached_tokens:
            tokens[2].inc(entry.cached_tokens)
        if entry.cache_write_tokens:
            tokens[3].inc(entry.cache_write_tokens)
        if entry.cost_usd is not None:
            row.cost.inc(float(entry.cost_usd))
        elif status == "ok":
            c.unpriced(model).inc()
        if entry.baseline_cost_usd is not None:
            row.baseline.inc(float(entry.baseline_cost_usd))
        if entry.cache is not None:
            c.cache(entry.cache).inc()
        if entry.cache_saved_usd is not None:
            c.cache_saved(model).inc(float(entry.cache_saved_usd))

    def render(self) -> bytes:
        """The exposition text."""
        stats = self._stats()
        if stats is not None:
            self.queue.set(stats.queue_depth)
            self.spooled.set(stats.spooled + stats.spooled_overflow)
        shared = os.environ.get(MULTIPROC_ENV)
        if shared:  # every worker's values, added up
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=shared)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


class _Labelled:
    """`GatewayMetrics`' labelled metrics, each behind its children's table (kept numbers when
    `flushed` collects them)."""

    def __init__(self, m: GatewayMetrics, flushed: list[Flushed] | None):
        self.requests, self.errors, self.attempts = counts(m.requests, flushed), \
            counts(m.errors, flushed), counts(m.attempts, flushed)
        self.fallbacks, self.tokens = counts(m.fallbacks, flushed), counts(m.tokens, flushed)
        self.latency: Kept[Histogram, Observed] = histograms(m.latency, flushed)
        self.ttft: Kept[Histogram, Observed] = histograms(m.ttft, flushed)
        self.cost, self.baseline = counts(m.cost, flushed), counts(m.baseline, flushed)
        self.unpriced, self.cache, self.cache_saved = counts(m.unpriced, flushed), \
            counts(m.cache, flushed), counts(m.cache_saved, flushed)


TOKEN_KINDS = ("input", "output", "cached", "cache_write")


@dataclass
class _Row:
    """The children one label set (and status) updates on every request, resolved once: one
    lookup per request instead of one per metric."""

    requests: Incremented
    latency: Observed
    tokens: tuple[Incremented, ...]  # by TOKEN_KINDS
    cost: Incremented
    baseline: Incremented
    #: The attempts child of a successful try of the row's model (`result="ok"`), once one came.
    answered: Incremented | None = None

    @classmethod
    def of(cls, c: _Labelled, labels: tuple[str, ...], status: str) -> _Row:
        model, tier = labels[0], labels[1]
        return cls(c.requests(*labels, status), c.latency(model, tier),
                   tuple(c.tokens(model, kind) for kind in TOKEN_KINDS), c.cost(*labels),
                   c.baseline(*labels))
