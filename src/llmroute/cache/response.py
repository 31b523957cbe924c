"""The response cache as the gateway uses it: `probe` a request (off, bypass, hit, semantic hit,
or a miss that leads or follows identical concurrent misses), `keep` the upstream's complete
answer of a miss, `release` a miss that produced none. The store is in-process (LRU + TTL) or
Redis (shared by replicas); an unreachable Redis makes the request a bypass, logged once, never a
failure. See docs/caching.md."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..chat import ChatRequest
from ..control.state import StateUnavailable
from ..outcome import Outcome, Principal
from ..relay import close_stream, usage_dict
from ..settings import Settings
from .answer import CachedAnswer, answer_of, complete
from .config import ResponseCacheConfig
from .keys import request_key, sampled, scope_of
from .replay import Assembler
from .single_flight import Flight, Flights
from .store_memory import MemoryStore

if TYPE_CHECKING:  # numpy and the encoders load only when the semantic cache is on
    from .semantic import Query, SemanticIndex

JSON = dict[str, Any]
HEADER = "x-llmroute-cache"
SIMILARITY_HEADER = "x-llmroute-cache-similarity"
#: How often a request waiting on another replica's identical miss looks for its answer.
POLL_S = 0.02
#: While the store is unreachable, requests skip it (bypass) for this long after each failure,
#: so that a Redis that hangs costs one request its timeout per second, not every request.
RETRY_S = 1.0
log = logging.getLogger("llmroute.cache")


class AnswerStore(Protocol):
    """Where answers live: `MemoryStore` or `RedisStore` (which raise `StateUnavailable`)."""

    shared: bool

    async def get(self, key: str) -> bytes | None: ...
    async def put(self, key: str, value: bytes, ttl_s: float) -> None: ...
    async def lock(self, key: str, ttl_s: float) -> bool: ...
    async def locked(self, key: str) -> bool: ...
    async def unlock(self, key: str) -> None: ...
    async def aclose(self) -> None: ...


@dataclass
class Probe:
    """What the cache says about one request. state: None (the cache is off), bypass, hit,
    semantic, or miss; `answer` is set on a hit; `flight`/`locked` while this miss leads."""

    state: str | None
    key: str = ""
    scope: str = ""
    ttl_s: float = 0.0
    write: bool = False
    answer: CachedAnswer | None = None
    similarity: float | None = None
    flight: Flight | None = None
    locked: bool = False
    query: Query | None = None  # the prompt's embedding (semantic cache), kept for `keep`

    def headers(self) -> dict[str, str]:
        if self.state is None:
            return {}
        out = {HEADER: "hit" if self.answer is not None else self.state}
        if self.similarity is not None:
            out[SIMILARITY_HEADER] = f"{self.similarity:.4f}"
        return out

    def decline(self) -> None:
        """A found answer this caller may not be served: go upstream, store nothing."""
        self.answer, self.similarity, self.state, self.write = None, None, "bypass", False

    def mark(self, outcome: Outcome) -> None:
        """Put the cache's state on a request that the upstream answers."""
        outcome.cache = self.state
        outcome.extra_headers.update(self.headers())


OFF = Probe(None)
BYPASS = Probe("bypass")


def open_store(settings: Settings) -> AnswerStore:
    """The configured store: `auto` is Redis when the shared state is (none is opened while the
    cache is off)."""
    config, state = settings.cache.response, settings.state
    redis = config.enabled and (config.backend == "redis" or (
        config.backend == "auto" and not state.url.startswith("memory://")))
    if not redis:
        return MemoryStore(config.max_entries, config.max_bytes)
    from .store_redis import RedisStore

    return RedisStore(state.url, prefix=state.prefix, timeout_s=state.timeout_s)


class ResponseCache:
    """The response cache of one gateway."""

    def __init__(self, config: ResponseCacheConfig, store: AnswerStore,
                 semantic: SemanticIndex | None = None):
        self.config = config
        self.store = store
        self.semantic = semantic
        self.flights = Flights(config.wait_s)
        self.up = True
        self._retry_at = 0.0
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> ResponseCache:
        semantic = None
        if settings.cache.response.enabled and settings.cache.semantic.enabled:
            from .semantic import SemanticIndex

            semantic = SemanticIndex.from_config(settings.cache.semantic,
                                                 settings.routing.default_policy)
        return cls(settings.cache.response, open_store(settings), semantic)

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.store.aclose()

    def _down(self, exc: StateUnavailable) -> None:
        self._retry_at = time.monotonic() + RETRY_S
        if self.up:
            self.up = False
            log.error("response cache store unreachable (%s): requests are served uncached", exc)

    def _back(self) -> None:
        if not self.up:
            self.up = True
            log.warning("response cache store reachable again")

    async def _get(self, key: str) -> CachedAnswer | None:
        raw = await self.store.get(key)
        self._back()
        return CachedAnswer.from_bytes(raw) if raw is not None else None

    # -- probing ----------------------------------------------------------------------------
    async def probe(self, req: ChatRequest, principal: Principal) -> Probe:
        """What the cache has for `req`: see `Probe`."""
        config, directive = self.config, req.cache
        if not config.enabled:
            return OFF
        if not directive.write or (sampled(req.body) and directive.ttl_s is None
                                   and not config.cache_nonzero_temperature):
            return BYPASS
        if not self.up and time.monotonic() < self._retry_at:
            return BYPASS
        scope = scope_of(principal, config.scope)
        probe = Probe("miss", request_key(req, scope), scope, directive.ttl_s or config.ttl_s,
                      write=True)
        if not directive.read:  # no-cache: answered fresh, stored for the next
            probe.state = "bypass"
            return probe
        try:
            probe.answer = await self._get(probe.key)
            if probe.answer is None and self.semantic is not None:
                await self._semantic(req, probe)
        except StateUnavailable as exc:
            self._down(exc)
            return BYPASS
        if probe.answer is not None:
            probe.state = probe.state if probe.state == "semantic" else "hit"
            return probe
        return await self._single_flight(probe)

    async def _semantic(self, req: ChatRequest, probe: Probe) -> None:
        assert self.semantic is not None
        probe.query = query = await self.semantic.embed(req, probe.scope)
        if query is None:
            return
        for key, similarity in self.semantic.nearest(query):
            answer = await self._get(key)
            if answer is None:  # expired or evicted from the store
                self.semantic.forget(key)
                continue
            probe.answer, probe.similarity, probe.state = answer, similarity, "semantic"
            return

    async def _single_flight(self, probe: Probe) -> Probe:
        """Lead the key's flight (and, with Redis, its lock) or wait for the leader's answer."""
        flight = self.flights.join(probe.key)
        if not flight.leader:
            probe.answer = await self.flights.wait(flight)
            probe.state = "hit" if probe.answer is not None else "miss"
            return probe
        probe.flight = flight
        if not self.store.shared:
            return probe
        try:
            probe.locked = await self.store.lock(probe.key, self.config.wait_s)
            if not probe.locked:
                probe.answer = await self._await_remote(probe.key)
        except StateUnavailable as exc:
            self._down(exc)
            self.release(probe)
            return BYPASS
        if probe.answer is not None:
            probe.state = "hit"
            self.flights.finish(flight, probe.answer)
            probe.flight = None
        return probe

    async def _await_remote(self, key: str) -> CachedAnswer | None:
        """Another replica leads: poll for its answer until it stores one, gives up its lock
        (it failed: fall through to our own call) or `wait_s` passes."""
        deadline = asyncio.get_running_loop().time() + self.config.wait_s
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(POLL_S)
            answer = await self._get(key)
            if answer is not None:
                return answer
            if not await self.store.locked(key):
                return await self._get(key)
        return None

    # -- after the upstream answered ----------------------------------------------------------
    async def keep(self, probe: Probe, body: JSON, outcome: Outcome) -> None:
        """Store a miss's complete answer (never an error, a cut stream, or one larger than
        `max_entry_bytes`), and hand it to the requests waiting for it."""
        if probe.state is None or not probe.key:
            return
        answer = None
        if outcome.finished and outcome.usage is not None and complete(body):
            answer = answer_of(body, model=outcome.model, tier=outcome.plan.tier,
                               usage=outcome.usage, cost_usd=outcome.cost_usd,
                               request_id=outcome.request_id)
        try:
            if answer is not None and probe.write:
                raw = answer.to_bytes()
                if len(raw) <= self.config.max_entry_bytes:
                    await self.store.put(probe.key, raw, probe.ttl_s)
                    if self.semantic is not None and probe.query is not None:
                        self.semantic.add(probe.key, probe.query)
        except StateUnavailable as exc:
            self._down(exc)
        finally:
            self.release(probe, answer)

    def release(self, probe: Probe, answer: CachedAnswer | None = None) -> None:
        """End a miss's leadership (idempotent): its followers get `answer` (None: they make
        their own calls); the Redis lock goes in the background."""
        if probe.flight is not None:
            self.flights.finish(probe.flight, answer)
            probe.flight = None
        if probe.locked:
            probe.locked = False
            task = asyncio.get_running_loop().create_task(self._unlock(probe.key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _unlock(self, key: str) -> None:
        try:
            await self.store.unlock(key)
        except StateUnavailable as exc:  # the lock's PX lets it go by itself
            self._down(exc)

    def recording(self, probe: Probe, outcome: Outcome,
                  chunks: AsyncIterator[JSON]) -> AsyncIterator[JSON]:
        """A miss's stream, relayed; when it ended complete, the answer it adds up to is kept.
        A stream with nothing to keep is returned as it is."""
        if probe.state is None or not probe.key:
            return chunks
        return self._recording(probe, outcome, chunks)

    async def _recording(self, probe: Probe, outcome: Outcome,
                         chunks: AsyncIterator[JSON]) -> AsyncIterator[JSON]:
        assembler = Assembler()
        try:
            async for chunk in chunks:
                assembler.add(chunk)
                yield chunk
            usage = _usage_object(outcome)
            await self.keep(probe, assembler.body(usage), outcome)
        finally:
            self.release(probe)
            await close_stream(chunks)


def _usage_object(outcome: Outcome) -> JSON | None:
    if outcome.usage is None:
        return None
    usage: JSON = usage_dict(outcome.usage)
    if outcome.usage.cached_input_tokens:
        usage["prompt_tokens_details"] = {"cached_tokens": outcome.usage.cached_input_tokens}
    if outcome.usage_estimated:
        usage["estimated"] = True
    if outcome.cost_usd is not None:
        usage["cost"] = float(outcome.cost_usd)
    return usage
