"""Per-deployment circuit breakers: `CooldownPolicy` says when a deployment leaves rotation and for
how long; `Cooldowns` keeps one breaker per deployment (closed → open → half-open with one probe).
The clock is injected; methods never await, so each is atomic under asyncio."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .errors import UPSTREAM_KINDS, UpstreamError

BreakerState = Literal["closed", "open", "half_open"]


def check_kinds(kinds: frozenset[str], what: str) -> None:
    """ValueError naming any kind that is not an upstream error kind."""
    unknown = sorted(kinds - frozenset(UPSTREAM_KINDS))
    if unknown:
        raise ValueError(f"{what}: unknown upstream error kind(s) {unknown}")


@dataclass(frozen=True)
class CooldownPolicy:
    """When a deployment leaves rotation: after `failures` consecutive cooldown-worthy failures, or at
    once for `immediate_kinds`; it stays out for `cooldown_s` (or a longer 429 `Retry-After`)."""

    failures: int = 3
    cooldown_s: float = 30.0
    immediate_kinds: frozenset[str] = frozenset({"payment", "auth"})

    def __post_init__(self) -> None:
        if self.failures < 1:
            raise ValueError("failures must be at least 1")
        if self.cooldown_s < 0:
            raise ValueError("cooldown_s must not be negative")
        check_kinds(self.immediate_kinds, "immediate_kinds")

    def long_retry_after(self, error: UpstreamError) -> float | None:
        """A 429's `Retry-After` when it is longer than `cooldown_s` (it then sets the cooldown)."""
        if error.kind == "rate_limit" and error.retry_after is not None:
            return error.retry_after if error.retry_after > self.cooldown_s else None
        return None

    def open_for(self, error: UpstreamError, failures: int) -> float | None:
        """Seconds a closed breaker opens for after `error` (the `failures`-th in a row), or None."""
        retry_after = self.long_retry_after(error)
        if retry_after is not None:
            return retry_after
        if error.kind in self.immediate_kinds or failures >= self.failures:
            return self.cooldown_s
        return None


@dataclass(frozen=True)
class BreakerSnapshot:
    """One deployment's breaker as seen at snapshot time."""

    state: BreakerState
    failures: int
    open_for_s: float
    probing: bool


@dataclass
class _Breaker:
    failures: int = 0
    open_until: float | None = None  # None: closed
    probing: bool = False


class Cooldowns:
    """Per-deployment circuit breakers: closed → open (after the policy's failures) → half-open once
    the cooldown has passed, where one probe at a time is let through; its success closes the breaker,
    its failure re-opens it. Methods never await, so each is atomic under asyncio."""

    def __init__(self, policy: CooldownPolicy | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy or CooldownPolicy()
        self._clock = clock
        self._breakers: dict[str, _Breaker] = {}

    def _state_of(self, breaker: _Breaker | None, now: float) -> BreakerState:
        if breaker is None or breaker.open_until is None:
            return "closed"
        return "open" if now < breaker.open_until else "half_open"

    def state(self, key: str) -> BreakerState:
        """The breaker's state now ("closed" for a key never seen)."""
        return self._state_of(self._breakers.get(key), self._clock())

    def available(self, key: str) -> bool:
        """May a request go to `key` now? In half-open state this claims the single probe slot: the
        caller must then report `record_success`, `record_failure` or `release`."""
        breaker = self._breakers.get(key)
        state = self._state_of(breaker, self._clock())
        if state == "closed":
            return True
        if state == "open" or breaker is None or breaker.probing:
            return False
        breaker.probing = True
        return True

    def record_success(self, key: str) -> None:
        """The deployment answered: a closed breaker forgets its failures, a half-open one closes.
        An open breaker stays open (a straggler's success does not cut a cooldown short)."""
        breaker = self._breakers.get(key)
        if breaker is None:
            return
        if self._state_of(breaker, self._clock()) != "open":
            self._breakers[key] = _Breaker()

    def record_failure(self, key: str, error: UpstreamError) -> None:
        """Count a failure: trip a closed breaker per the policy, re-open a half-open one. While open,
        only a longer 429 `Retry-After` moves the cooldown's end. Kinds that do not trip cooldowns
        (the request's own fault) show the deployment answered: they count as a success here."""
        if not error.trips_cooldown:
            self.record_success(key)
            return
        now = self._clock()
        breaker = self._breakers.setdefault(key, _Breaker())
        state = self._state_of(breaker, now)
        breaker.failures += 1
        if state == "open" and breaker.open_until is not None:
            retry_after = self.policy.long_retry_after(error)
            if retry_after is not None:
                breaker.open_until = max(breaker.open_until, now + retry_after)
            return
        open_for = self.policy.open_for(error, breaker.failures)
        if state == "half_open":
            open_for = max(open_for or 0.0, self.policy.cooldown_s)
        if open_for is not None:
            breaker.open_until = now + open_for
            breaker.probing = False

    def hold(self, key: str, seconds: float) -> None:
        """Keep `key` out of rotation for `seconds` from now (a cooldown another replica opened);
        a breaker already open longer keeps its end."""
        if seconds <= 0:
            return
        breaker = self._breakers.setdefault(key, _Breaker())
        until = self._clock() + seconds
        if breaker.open_until is None or breaker.open_until < until:
            breaker.open_until = until
            breaker.probing = False

    def release(self, key: str) -> None:
        """Give back a claimed probe slot without a verdict (the call was cancelled or crashed)."""
        breaker = self._breakers.get(key)
        if breaker is not None:
            breaker.probing = False

    def snapshot(self) -> dict[str, BreakerSnapshot]:
        """Every known deployment's breaker, for readiness checks and metrics."""
        now = self._clock()
        return {
            key: BreakerSnapshot(
                state=self._state_of(breaker, now),
                failures=breaker.failures,
                open_for_s=max(0.0, (breaker.open_until or now) - now),
                probing=breaker.probing,
            )
            for key, breaker in self._breakers.items()
        }
