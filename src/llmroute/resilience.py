"""The call path's layers: a fallback chain over per-model retries over a single attempt, plus cooldowns.

`call_with_fallbacks` walks a chain of models; each model gets up to `RetryPolicy.max_attempts` tries,
each try is one call of the injected `attempt(model, timeout_s)`. `Cooldowns` (in `breakers`,
re-exported here) is a per-deployment circuit breaker that takes failing deployments out of rotation.
Every try is recorded as an `Attempt`.
Clock, sleep and randomness are injected; nothing here keeps module-level mutable state.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeAlias, TypeVar

from .breakers import BreakerSnapshot, BreakerState, CooldownPolicy, Cooldowns, check_kinds
from .deadlines import Deadlines
from .errors import UPSTREAM_KINDS, AllAttemptsFailedError, LLMRouteError, UpstreamError
from .frozen import quick_init

__all__ = ["DEFAULT_RETRY_ON", "SKIPPED_KIND", "Attempt", "BreakerSnapshot", "BreakerState",
           "CooldownPolicy", "Cooldowns", "RetryPolicy", "attempt_log", "call_with_fallbacks"]

T = TypeVar("T")

#: The kinds `UpstreamError.retryable` says are worth another try of the same deployment.
DEFAULT_RETRY_ON: frozenset[str] = frozenset(
    kind for kind in UPSTREAM_KINDS if UpstreamError(kind, "").retryable
)
#: Kinds caused by the request itself: handled by the fallback layer, never retried.
_REQUEST_KINDS = frozenset({"bad_request", "context_window", "content_policy"})
#: Last-error kinds that make an all-failed answer a 503 (the upstreams are busy, not broken).
_BUSY_KINDS = frozenset({"rate_limit", "overloaded"})
#: `Attempt.error_kind` of a model skipped because its breaker is open.
SKIPPED_KIND = "cooldown"
#: Attribute under which the attempt log is attached to the error `call_with_fallbacks` raises.
ATTEMPT_LOG_ATTR = "attempt_log"


@dataclass(frozen=True)
class RetryPolicy:
    """How one model is retried: attempts, exponential backoff with jitter, `Retry-After`, which kinds."""

    max_attempts: int = 2
    backoff_base_s: float = 0.25
    backoff_max_s: float = 4.0
    jitter: float = 0.5
    honour_retry_after: bool = True
    max_retry_after_s: float = 10.0
    retry_on: frozenset[str] = DEFAULT_RETRY_ON

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1 (it counts the first try)")
        if self.backoff_base_s < 0 or self.backoff_max_s < 0 or self.max_retry_after_s < 0:
            raise ValueError("backoff_base_s, backoff_max_s and max_retry_after_s must not be negative")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be a fraction between 0 and 1")
        check_kinds(self.retry_on, "retry_on")
        if self.retry_on & _REQUEST_KINDS:
            raise ValueError(f"retry_on must not contain request-caused kinds {sorted(_REQUEST_KINDS)}")

    def backoff(self, retry: int, rng: random.Random) -> float:
        """The wait before retry number `retry` (1 = the first retry): base·2^(retry−1) capped at
        `backoff_max_s`, then jittered down by up to `jitter` of itself, so it lies in [(1−j)·d, d]."""
        delay = min(self.backoff_base_s * 2.0 ** (retry - 1), self.backoff_max_s)
        return delay * (1.0 - self.jitter * rng.random())

    def wait_before_retry(self, error: UpstreamError, retry: int, rng: random.Random) -> float | None:
        """Seconds to wait before retrying after `error`, or None when this model should not be retried
        (kind not retried, or the upstream's `Retry-After` is longer than `max_retry_after_s`)."""
        if error.kind not in self.retry_on:
            return None
        if self.honour_retry_after and error.retry_after is not None:
            if error.retry_after > self.max_retry_after_s:
                return None
            return max(0.0, error.retry_after)
        return self.backoff(retry, rng)


@quick_init
@dataclass(frozen=True)
class Attempt:
    """One try of one model. `error_kind` None means success; skipped tries were never sent;
    `router`: the try was the LLM router's classification call, not an answer to the request."""

    model: str
    number: int
    error_kind: str | None
    message: str = ""
    status: int | None = None
    latency_s: float = 0.0
    skipped: bool = False
    router: bool = False
    #: When the try began (on the call's clock, `time.monotonic` by default; 0: never sent), for
    #: traces; not part of what the try was (equality).
    started: float = field(default=0.0, compare=False)

    @property
    def ok(self) -> bool:
        return self.error_kind is None


def attempt_log(error: BaseException) -> list[Attempt]:
    """The attempts attached to an error raised by `call_with_fallbacks` (empty when none)."""
    log = getattr(error, ATTEMPT_LOG_ATTR, None)
    return list(log) if isinstance(log, list) else []


def _attach(error: LLMRouteError, log: list[Attempt]) -> LLMRouteError:
    setattr(error, ATTEMPT_LOG_ATTR, list(log))
    return error


#: A try that succeeded: the 1-tuple of its value, told apart from its UpstreamError (or None:
#: skipped) by being a tuple (issue 17: no object of a class of its own per answered call).
_Success: TypeAlias = tuple[T]


@dataclass
class _Run(Generic[T]):
    """The state of one `call_with_fallbacks` call: its deadline, its collaborators, its attempt log."""

    attempt: Callable[[str, float], Awaitable[T]]
    retry: RetryPolicy
    cooldowns: Cooldowns
    sleep: Callable[[float], Awaitable[None]]
    clock: Callable[[], float]
    rng: random.Random
    deadline: float
    log: list[Attempt] = field(default_factory=list)
    #: Per model, when (on `clock`) its latest busy answer said it may be asked again (Retry-After).
    free_at: dict[str, float] = field(default_factory=dict)
    #: Keeps each try's deadline with one shared timer (None: an asyncio.timeout per try).
    deadlines: Deadlines | None = None

    def remaining(self) -> float:
        return self.deadline - self.clock()

    async def model(self, model: str) -> _Success[T] | UpstreamError | None:
        """Try one model with retries: its result, its last error, or None when it was skipped."""
        last: UpstreamError | None = None
        for number in range(1, self.retry.max_attempts + 1):
            if number > 1 and self.remaining() <= 0:
                break
            if not self.cooldowns.available(model):
                return self._skipped(model, number, last)
            outcome = await self.once(model, number)
            if isinstance(outcome, tuple):
                return outcome
            last = outcome
            if not outcome.falls_back:
                raise _attach(outcome, self.log)
            if number == self.retry.max_attempts:
                break
            wait = self.retry.wait_before_retry(outcome, number, self.rng)
            if wait is None or wait >= self.remaining():
                break
            if self.cooldowns.state(model) == "open":  # this failure tripped it: don't wait for nothing
                return self._skipped(model, number + 1, last)
            await self.sleep(wait)
        return last

    def _skipped(self, model: str, number: int, last: UpstreamError | None) -> UpstreamError | None:
        self.log.append(Attempt(model, number, SKIPPED_KIND, "skipped: breaker open", skipped=True))
        return last

    async def once(self, model: str, number: int) -> _Success[T] | UpstreamError:
        """One call of `attempt`, cut at the deadline; records the attempt and informs the breaker."""
        budget = self.remaining()
        started = self.clock()
        reported = False
        deadlines = self.deadlines
        armed = None if deadlines is None else \
            deadlines.arm(asyncio.get_running_loop().time() + budget)
        try:
            try:
                if armed is None:
                    async with asyncio.timeout(budget) as scope:
                        value = await self.attempt(model, budget)
                else:
                    assert deadlines is not None
                    try:
                        value = await self.attempt(model, budget)
                    except BaseException as exc:
                        deadlines.disarm(armed, exc)  # TimeoutError when the deadline cut it
                        raise
                    deadlines.disarm(armed, None)
            except TimeoutError:
                if not (scope.expired() if armed is None else armed.expired()):
                    raise
                error = UpstreamError("timeout", f"cut at the deadline after {budget:.3f}s", model=model)
            except UpstreamError as exc:
                error = exc
            else:
                self.cooldowns.record_success(model)
                reported = True
                self.log.append(Attempt(model, number, None, latency_s=self.clock() - started,
                                        started=started))
                return (value,)
            self.cooldowns.record_failure(model, error)
            reported = True
            if error.kind in _BUSY_KINDS and error.retry_after is not None:
                self.free_at[model] = self.clock() + max(0.0, error.retry_after)
            self.log.append(Attempt(model, number, error.kind, error.message, error.upstream_status,
                                    self.clock() - started, started=started))
            return error
        finally:
            if not reported:
                self.cooldowns.release(model)


def _next_models(error: UpstreamError, model: str, rest: list[str], content_chain: Sequence[str],
                 switched: bool, window: Callable[[str], int | None]) -> tuple[list[str], bool]:
    """What is left to try after `model` finally failed with `error`, and whether the content-policy
    chain is now in use."""
    if error.kind == "context_window":
        failed = window(model)
        if failed is None:
            return rest, switched
        return [m for m in rest if (w := window(m)) is not None and w > failed], switched
    if error.kind == "content_policy":
        if switched:
            return rest, True
        return (list(content_chain), True) if content_chain else ([], False)
    return rest, switched


def _soonest_free(run: _Run[Any]) -> float | None:
    """Seconds until the first model this call tried or skipped should take requests again: its
    breaker's remaining cooldown, or the wait its last busy answer asked for. None when unknown
    (a model answered busy without a Retry-After, or failed some other way)."""
    breakers = run.cooldowns.snapshot()
    now = run.clock()
    waits: list[float] = []
    for model in dict.fromkeys(a.model for a in run.log):
        breaker = breakers.get(model)
        if breaker is not None and breaker.state == "open":
            waits.append(breaker.open_for_s)
        elif model in run.free_at:
            waits.append(max(0.0, run.free_at[model] - now))
        else:
            return None
    return min(waits) if waits else None


def _final_error(run: _Run[Any], last: UpstreamError | None, exhausted: bool) -> LLMRouteError:
    """The error for a call where nothing succeeded. When the chain ran out right after a refusal or
    an oversized prompt (nothing skipped or cut after it), that error is the answer: a 400. A busy
    503 says when to come back (Retry-After)."""
    log = run.log
    if (exhausted and last is not None and last.kind in ("content_policy", "context_window")
            and log and log[-1].error_kind == last.kind):
        return _attach(last, log)
    tried = [a for a in log if not a.skipped]
    if last is not None and tried and all(a.error_kind == "unsupported" for a in tried):
        return _attach(last, log)  # no model could take the request as asked: the client's 400
    busy = not tried or (tried[-1].error_kind in _BUSY_KINDS)
    listing = [(a.model, f"{a.error_kind}: {a.message}") for a in log]
    return _attach(AllAttemptsFailedError(listing, status=503 if busy else 502,
                                          retry_after=_soonest_free(run) if busy else None), log)


async def call_with_fallbacks(
    chain: Sequence[str],
    attempt: Callable[[str, float], Awaitable[T]],
    *,
    retry: RetryPolicy,
    cooldowns: Cooldowns,
    deadline_s: float,
    context_window: Callable[[str], int | None] = lambda m: None,
    content_policy_chain: Sequence[str] = (),
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
    deadlines: Deadlines | None = None,
) -> tuple[T, list[Attempt]]:
    """Call `attempt(model, timeout_s)` along `chain` until one succeeds; return (result, attempts).

    Raises the `UpstreamError` itself for a bad request, a content refusal with no (or an exhausted)
    content-policy chain, and a prompt too large for every remaining model; otherwise
    `AllAttemptsFailedError` (503 if all were skipped or the last error was busy, else 502). Either
    carries the attempts under `.attempt_log` (read it with `attempt_log(error)`). Any exception other
    than `UpstreamError` from `attempt` propagates unchanged. `deadlines` (one per event loop, kept
    across calls) holds each try's deadline without a timer of its own.
    """
    if not chain:
        raise ValueError("call_with_fallbacks needs at least one model in the chain")
    if deadline_s <= 0:
        raise ValueError("deadline_s must be positive")
    run = _Run(attempt, retry, cooldowns, sleep, clock, rng or random.Random(), clock() + deadline_s,
               deadlines=deadlines)
    queue, switched = list(chain), False
    last: UpstreamError | None = None
    while queue and run.remaining() > 0:
        model, queue = queue[0], queue[1:]
        outcome = await run.model(model)
        if isinstance(outcome, tuple):
            return outcome[0], run.log
        if outcome is not None:
            last = outcome
            queue, switched = _next_models(outcome, model, queue, content_policy_chain, switched,
                                           context_window)
    raise _final_error(run, last, exhausted=not queue)
