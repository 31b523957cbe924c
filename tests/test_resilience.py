"""Tests of the call path's layers: retries, backoff, Retry-After, deadline, fallbacks, cooldowns."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from llmroute.deadlines import Deadlines
from llmroute.errors import AllAttemptsFailedError, UpstreamError
from llmroute.resilience import (
    DEFAULT_RETRY_ON,
    Attempt,
    CooldownPolicy,
    Cooldowns,
    RetryPolicy,
    attempt_log,
    call_with_fallbacks,
)

NO_JITTER = RetryPolicy(jitter=0.0)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeSleep:
    """Advances the fake clock instead of sleeping, and records every wait."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)


Step = object  # a value to return, an exception to raise, or (latency_s, value-or-exception)


class Script:
    """A scripted `attempt(model, timeout_s)`: each model answers its steps in order."""

    def __init__(self, clock: FakeClock, steps: dict[str, list[Step]]) -> None:
        self.clock = clock
        self.steps = {model: list(s) for model, s in steps.items()}
        self.calls: list[tuple[str, float]] = []

    @property
    def models(self) -> list[str]:
        return [model for model, _ in self.calls]

    async def __call__(self, model: str, timeout_s: float) -> str:
        self.calls.append((model, timeout_s))
        assert self.steps.get(model), f"unexpected call of {model}"
        step = self.steps[model].pop(0)
        if isinstance(step, tuple):
            latency, step = step
            self.clock.advance(latency)
        if isinstance(step, BaseException):
            raise step
        assert isinstance(step, str)
        return step


def err(kind: str, message: str = "boom", *, status: int | None = None,
        retry_after: float | None = None) -> UpstreamError:
    return UpstreamError(kind, message, status=status, retry_after=retry_after)


@pytest.fixture(autouse=True, params=[False, True], ids=["asyncio-timeout", "shared-deadlines"])
def _deadlines(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test twice: each try's deadline by asyncio.timeout, and kept by `Deadlines`."""
    Env.shared = request.param
    yield
    Env.shared = False


class Env:
    """A fake clock, sleep and cooldowns wired together, and a `call` shortcut."""

    #: Calls pass a `Deadlines` (the gateway's way) rather than none.
    shared = False

    def __init__(self, cooldown: CooldownPolicy | None = None) -> None:
        self.clock = FakeClock()
        self.sleep = FakeSleep(self.clock)
        self.cooldowns = Cooldowns(cooldown, clock=self.clock)

    def script(self, **steps: list[Step]) -> Script:
        return Script(self.clock, steps)

    async def call(self, chain: Sequence[str], script: Script, *, retry: RetryPolicy = NO_JITTER,
                   deadline_s: float = 60.0,
                   context_window: Callable[[str], int | None] = lambda m: None,
                   content_policy_chain: Sequence[str] = (),
                   rng: random.Random | None = None) -> tuple[str, list[Attempt]]:
        return await call_with_fallbacks(
            chain, script, retry=retry, cooldowns=self.cooldowns, deadline_s=deadline_s,
            context_window=context_window, content_policy_chain=content_policy_chain,
            sleep=self.sleep, clock=self.clock, rng=rng,
            deadlines=Deadlines() if Env.shared else None,
        )


# ---------------------------------------------------------------- retries and backoff


@pytest.mark.asyncio
async def test_retry_then_success_records_both_attempts() -> None:
    env = Env()
    script = env.script(a=[(0.5, err("server", "bad gateway", status=502)), (0.25, "ok")])
    result, attempts = await env.call(["a", "b"], script)
    assert result == "ok"
    assert env.sleep.waits == [0.25]
    assert attempts == [
        Attempt("a", 1, "server", "bad gateway", 502, 0.5),
        Attempt("a", 2, None, "", None, 0.25),
    ]
    assert attempts[1].ok and not attempts[0].ok
    assert env.cooldowns.snapshot()["a"].failures == 0


@pytest.mark.asyncio
async def test_backoff_doubles_up_to_the_cap() -> None:
    env = Env(CooldownPolicy(failures=10))
    policy = RetryPolicy(max_attempts=6, backoff_base_s=0.25, backoff_max_s=1.0, jitter=0.0)
    script = env.script(a=[err("overloaded")] * 5 + ["ok"])
    result, attempts = await env.call(["a"], script, retry=policy)
    assert result == "ok"
    assert env.sleep.waits == [0.25, 0.5, 1.0, 1.0, 1.0]
    assert [a.number for a in attempts] == [1, 2, 3, 4, 5, 6]


def test_backoff_schedule_without_jitter() -> None:
    policy = RetryPolicy(jitter=0.0)
    rng = random.Random(0)
    assert [policy.backoff(n, rng) for n in range(1, 8)] == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_jitter_stays_within_bounds_and_is_seeded() -> None:
    policy = RetryPolicy(jitter=0.5)
    rng, twin = random.Random(42), random.Random(42)
    for retry in range(1, 8):
        nominal = min(0.25 * 2 ** (retry - 1), 4.0)
        for _ in range(200):
            wait = policy.backoff(retry, rng)
            assert nominal * 0.5 <= wait <= nominal
            assert wait == pytest.approx(nominal * (1 - 0.5 * twin.random()))
    spread = {policy.backoff(3, rng) for _ in range(50)}
    assert len(spread) > 1


@pytest.mark.asyncio
async def test_seeded_rng_gives_exact_jittered_waits() -> None:
    env = Env()
    policy = RetryPolicy(max_attempts=3, jitter=0.5)
    script = env.script(a=[err("server"), err("server"), "ok"])
    await env.call(["a"], script, retry=policy, rng=random.Random(7))
    twin = random.Random(7)
    expected = [0.25 * (1 - 0.5 * twin.random()), 0.5 * (1 - 0.5 * twin.random())]
    assert env.sleep.waits == pytest.approx(expected)


@pytest.mark.asyncio
async def test_retries_stop_after_max_attempts_then_fall_back() -> None:
    env = Env()
    script = env.script(a=[err("timeout"), err("connection")], b=["from b"])
    result, attempts = await env.call(["a", "b"], script)
    assert result == "from b"
    assert script.models == ["a", "a", "b"]
    assert env.sleep.waits == [0.25]  # no wait between models
    assert [(a.model, a.number, a.error_kind) for a in attempts] == [
        ("a", 1, "timeout"), ("a", 2, "connection"), ("b", 1, None)]


@pytest.mark.asyncio
async def test_kinds_outside_retry_on_fall_back_without_retry() -> None:
    env = Env()
    script = env.script(a=[err("not_found")], b=["ok"])
    await env.call(["a", "b"], script)
    assert script.models == ["a", "b"] and env.sleep.waits == []
    custom = RetryPolicy(retry_on=frozenset({"server"}), jitter=0.0)
    script = env.script(c=[err("timeout")], d=["ok"])
    await env.call(["c", "d"], script, retry=custom)
    assert script.models == ["c", "d"]
    assert frozenset({"rate_limit", "overloaded", "server", "timeout", "connection"}) == DEFAULT_RETRY_ON


# ---------------------------------------------------------------- Retry-After


@pytest.mark.asyncio
async def test_retry_after_is_the_wait() -> None:
    env = Env()
    script = env.script(a=[err("rate_limit", retry_after=3.0), "ok"])
    result, _ = await env.call(["a", "b"], script)
    assert result == "ok" and env.sleep.waits == [3.0]


@pytest.mark.asyncio
async def test_retry_after_up_to_the_maximum_is_honoured() -> None:
    env = Env()
    script = env.script(a=[err("rate_limit", retry_after=10.0), "ok"])
    await env.call(["a"], script)
    assert env.sleep.waits == [10.0]


@pytest.mark.asyncio
async def test_over_long_retry_after_moves_on_to_the_next_model_at_once() -> None:
    env = Env()
    script = env.script(a=[err("rate_limit", retry_after=10.5)], b=["from b"])
    result, attempts = await env.call(["a", "b"], script)
    assert result == "from b"
    assert env.sleep.waits == []
    assert [(a.model, a.error_kind) for a in attempts] == [("a", "rate_limit"), ("b", None)]


@pytest.mark.asyncio
async def test_retry_after_ignored_when_not_honoured() -> None:
    env = Env()
    policy = RetryPolicy(honour_retry_after=False, jitter=0.0)
    script = env.script(a=[err("rate_limit", retry_after=20.0), "ok"])
    await env.call(["a"], script, retry=policy)
    assert env.sleep.waits == [0.25]


@pytest.mark.asyncio
async def test_retry_after_of_an_overloaded_upstream_is_honoured_too() -> None:
    env = Env()
    script = env.script(a=[err("overloaded", retry_after=2.0), "ok"])
    await env.call(["a"], script)
    assert env.sleep.waits == [2.0]


# ---------------------------------------------------------------- the deadline


@pytest.mark.asyncio
async def test_each_attempt_gets_the_remaining_budget() -> None:
    env = Env()
    script = env.script(a=[(2.0, err("server")), (1.0, err("server"))], b=["ok"])
    await env.call(["a", "b"], script, deadline_s=10.0)
    assert script.calls == [("a", 10.0), ("a", 7.75), ("b", 6.75)]


@pytest.mark.asyncio
async def test_no_sleep_past_the_deadline_next_model_tried_at_once() -> None:
    env = Env()
    script = env.script(a=[(0.9, err("server"))], b=["ok"])
    result, _ = await env.call(["a", "b"], script, deadline_s=1.0)
    assert result == "ok"
    assert env.sleep.waits == []  # 0.25 s of backoff would end past the deadline
    assert script.calls == [("a", 1.0), ("b", pytest.approx(0.1))]


@pytest.mark.asyncio
async def test_retry_after_longer_than_remaining_budget_is_not_slept() -> None:
    env = Env()
    script = env.script(a=[(1.0, err("rate_limit", retry_after=5.0))])
    with pytest.raises(AllAttemptsFailedError) as info:
        await env.call(["a"], script, deadline_s=4.0)
    assert env.sleep.waits == []
    assert info.value.status == 503
    assert info.value.attempts == [("a", "rate_limit: boom")]


@pytest.mark.asyncio
async def test_spent_budget_stops_the_chain_with_what_was_tried() -> None:
    env = Env()
    script = env.script(a=[(5.0, err("timeout", "read timeout"))], b=["never"])
    with pytest.raises(AllAttemptsFailedError) as info:
        await env.call(["a", "b"], script, deadline_s=5.0)
    assert script.models == ["a"] and env.sleep.waits == []
    assert info.value.attempts == [("a", "timeout: read timeout")]
    assert info.value.status == 502


@pytest.mark.asyncio
async def test_attempt_running_at_the_deadline_is_cut_and_recorded_as_timeout() -> None:
    cooldowns = Cooldowns()
    started: list[float] = []

    async def hangs(model: str, timeout_s: float) -> str:
        started.append(timeout_s)
        await asyncio.Event().wait()
        return "never"

    with pytest.raises(AllAttemptsFailedError) as info:
        await call_with_fallbacks(["a", "b"], hangs, retry=NO_JITTER, cooldowns=cooldowns,
                                  deadline_s=0.05, clock=time.monotonic,
                                  deadlines=Deadlines() if Env.shared else None)
    assert started == [pytest.approx(0.05, abs=0.01)]
    (cut,) = attempt_log(info.value)
    assert (cut.model, cut.number, cut.error_kind) == ("a", 1, "timeout")
    assert "deadline" in cut.message
    assert info.value.status == 502
    assert cooldowns.snapshot()["a"].failures == 1


# ---------------------------------------------------------------- request-caused kinds


@pytest.mark.asyncio
async def test_bad_request_is_raised_at_once_without_retry_or_fallback() -> None:
    env = Env()
    error = err("bad_request", "messages: required", status=400)
    script = env.script(a=[error], b=["never"])
    with pytest.raises(UpstreamError) as info:
        await env.call(["a", "b"], script)
    assert info.value is error and info.value.status == 400
    assert script.models == ["a"] and env.sleep.waits == []
    assert attempt_log(info.value) == [Attempt("a", 1, "bad_request", "messages: required", 400, 0.0)]
    assert env.cooldowns.state("a") == "closed"


@pytest.mark.asyncio
async def test_context_window_skips_to_a_larger_model() -> None:
    env = Env()
    windows = {"a": 8_000, "b": 4_000, "c": None, "d": 8_000, "e": 128_000}
    script = env.script(a=[err("context_window")], e=["big"])
    result, attempts = await env.call(["a", "b", "c", "d", "e"], script, context_window=windows.get)
    assert result == "big"
    assert script.models == ["a", "e"] and env.sleep.waits == []
    assert [a.model for a in attempts] == ["a", "e"]


@pytest.mark.asyncio
async def test_context_window_of_unknown_size_keeps_every_later_model() -> None:
    env = Env()
    windows = {"a": None, "b": 4_000}
    script = env.script(a=[err("context_window")], b=["ok"])
    result, _ = await env.call(["a", "b"], script, context_window=windows.get)
    assert result == "ok"


@pytest.mark.asyncio
async def test_context_window_with_no_larger_model_raises_that_error() -> None:
    env = Env()
    windows = {"a": 128_000, "b": 8_000}
    error = err("context_window", "too long")
    script = env.script(a=[error])
    with pytest.raises(UpstreamError) as info:
        await env.call(["a", "b"], script, context_window=windows.get)
    assert info.value is error and info.value.status == 400
    assert len(attempt_log(info.value)) == 1


@pytest.mark.asyncio
async def test_content_policy_without_chain_raises_the_refusal() -> None:
    env = Env()
    refusal = err("content_policy", "refused")
    script = env.script(a=[refusal], b=["never"])
    with pytest.raises(UpstreamError) as info:
        await env.call(["a", "b"], script)
    assert info.value is refusal and info.value.status == 400
    assert script.models == ["a"]


@pytest.mark.asyncio
async def test_content_policy_switches_to_its_chain_instead_of_the_rest() -> None:
    env = Env()
    script = env.script(a=[err("content_policy")], x=["permissive"])
    result, attempts = await env.call(["a", "b"], script, content_policy_chain=["x", "y"])
    assert result == "permissive"
    assert script.models == ["a", "x"]
    assert [a.error_kind for a in attempts] == ["content_policy", None]


@pytest.mark.asyncio
async def test_content_policy_chain_is_used_once() -> None:
    env = Env()
    last = err("content_policy", "y refused")
    script = env.script(a=[err("content_policy")], x=[err("content_policy")], y=[last])
    with pytest.raises(UpstreamError) as info:
        await env.call(["a", "b"], script, content_policy_chain=["x", "y"])
    assert info.value is last
    assert script.models == ["a", "x", "y"]  # no loop back to x, never b


@pytest.mark.asyncio
async def test_content_policy_chain_ending_on_an_outage_is_a_502() -> None:
    env = Env()
    script = env.script(a=[err("content_policy")], x=[err("server"), err("server")])
    with pytest.raises(AllAttemptsFailedError) as info:
        await env.call(["a"], script, content_policy_chain=["x"])
    assert info.value.status == 502
    assert [m for m, _ in info.value.attempts] == ["a", "x", "x"]


# ---------------------------------------------------------------- cooldowns


def test_breaker_trips_after_n_consecutive_failures() -> None:
    clock = FakeClock()
    cooldowns = Cooldowns(CooldownPolicy(failures=3, cooldown_s=30), clock=clock)
    cooldowns.record_failure("a", err("server"))
    cooldowns.record_failure("a", err("timeout"))
    assert cooldowns.state("a") == "closed" and cooldowns.available("a")
    cooldowns.record_failure("a", err("connection"))
    assert cooldowns.state("a") == "open" and not cooldowns.available("a")
    clock.advance(29.9)
    assert cooldowns.state("a") == "open"
    clock.advance(0.1)
    assert cooldowns.state("a") == "half_open"
    assert cooldowns.state("never-seen") == "closed"


def test_success_resets_the_consecutive_count() -> None:
    cooldowns = Cooldowns(CooldownPolicy(failures=2), clock=FakeClock())
    cooldowns.record_failure("a", err("server"))
    cooldowns.record_success("a")
    cooldowns.record_failure("a", err("server"))
    assert cooldowns.state("a") == "closed"


def test_request_caused_failures_count_as_the_deployment_answering() -> None:
    cooldowns = Cooldowns(CooldownPolicy(failures=2), clock=FakeClock())
    cooldowns.record_failure("a", err("server"))
    cooldowns.record_failure("a", err("context_window"))
    cooldowns.record_failure("a", err("server"))
    assert cooldowns.state("a") == "closed"


@pytest.mark.parametrize("kind", ["payment", "auth"])
def test_payment_and_auth_trip_at_once(kind: str) -> None:
    clock = FakeClock()
    cooldowns = Cooldowns(CooldownPolicy(failures=3, cooldown_s=30), clock=clock)
    cooldowns.record_failure("a", err(kind))
    assert cooldowns.state("a") == "open"
    assert cooldowns.snapshot()["a"].open_for_s == 30


def test_long_retry_after_sets_the_cooldown() -> None:
    clock = FakeClock()
    cooldowns = Cooldowns(CooldownPolicy(failures=3, cooldown_s=30), clock=clock)
    cooldowns.record_failure("a", err("rate_limit", retry_after=120.0))
    assert cooldowns.state("a") == "open"
    clock.advance(119)
    assert cooldowns.state("a") == "open"
    clock.advance(1)
    assert cooldowns.state("a") == "half_open"
    cooldowns.record_failure("b", err("rate_limit", retry_after=20.0))  # shorter: counts as one
    assert cooldowns.state("b") == "closed"


def test_long_retry_after_extends_an_open_cooldown() -> None:
    clock = FakeClock()
    cooldowns = Cooldowns(CooldownPolicy(failures=1, cooldown_s=30), clock=clock)
    cooldowns.record_failure("a", err("server"))
    clock.advance(10)
    cooldowns.record_failure("a", err("server"))  # a straggler: does not move the end
    assert cooldowns.snapshot()["a"].open_for_s == 20
    cooldowns.record_failure("a", err("rate_limit", retry_after=90.0))
    assert cooldowns.snapshot()["a"].open_for_s == 90


def test_half_open_lets_one_probe_through_and_success_closes() -> None:
    clock = FakeClock()
    cooldowns = Cooldowns(CooldownPolicy(failures=1, cooldown_s=30), clock=clock)
    cooldowns.record_failure("a", err("server"))
    clock.advance(30)
    assert cooldowns.available("a") is True
    assert cooldowns.available("a") is False  # the probe slot is taken
    assert cooldowns.snapshot()["a"].probing
    cooldowns.record_success("a")
    assert cooldowns.state("a") == "closed"
    assert cooldowns.available("a") and cooldowns.available("a")


def test_probe_failure_reopens_for_another_cooldown() -> None:
    clock = FakeClock()
    cooldowns = Cooldowns(CooldownPolicy(failures=3, cooldown_s=30), clock=clock)
    cooldowns.record_failure("a", err("payment"))
    clock.advance(45)
    assert cooldowns.available("a")
    cooldowns.record_failure("a", err("timeout"))
    assert cooldowns.state("a") == "open"
    clock.advance(29)
    assert cooldowns.state("a") == "open"
    clock.advance(1)
    assert cooldowns.available("a")  # a fresh probe slot after the new cooldown


def test_success_of_a_straggler_does_not_cut_a_cooldown_short() -> None:
    clock = FakeClock()
    cooldowns = Cooldowns(CooldownPolicy(failures=1, cooldown_s=30), clock=clock)
    cooldowns.record_failure("a", err("server"))
    cooldowns.record_success("a")
    assert cooldowns.state("a") == "open"


def test_release_frees_the_probe_slot_and_snapshot_reports() -> None:
    clock = FakeClock()
    cooldowns = Cooldowns(CooldownPolicy(failures=1, cooldown_s=30), clock=clock)
    cooldowns.record_failure("a", err("server"))
    cooldowns.record_failure("b", err("server"))
    clock.advance(30)
    assert cooldowns.available("a") and not cooldowns.available("a")
    cooldowns.release("a")
    assert cooldowns.available("a")
    snap = cooldowns.snapshot()
    assert snap["a"].state == "half_open" and snap["a"].probing and snap["a"].failures == 1
    assert snap["b"].state == "half_open" and not snap["b"].probing


@pytest.mark.asyncio
async def test_call_trips_breaker_then_skips_and_records_skipped() -> None:
    env = Env(CooldownPolicy(failures=3, cooldown_s=30))
    single = RetryPolicy(max_attempts=1)
    for _ in range(3):
        script = env.script(a=[err("server")], b=["ok"])
        await env.call(["a", "b"], script, retry=single)
    assert env.cooldowns.state("a") == "open"
    script = env.script(b=["ok"])
    result, attempts = await env.call(["a", "b"], script, retry=single)
    assert result == "ok" and script.models == ["b"]
    assert attempts == [Attempt("a", 1, "cooldown", "skipped: breaker open", skipped=True),
                        Attempt("b", 1, None)]


@pytest.mark.asyncio
async def test_breaker_opened_by_this_call_stops_its_retries() -> None:
    env = Env(CooldownPolicy(failures=1, cooldown_s=30))
    script = env.script(a=[err("server")], b=["ok"])
    _, attempts = await env.call(["a", "b"], script)
    assert script.models == ["a", "b"] and env.sleep.waits == []
    assert [(a.model, a.error_kind, a.skipped) for a in attempts] == [
        ("a", "server", False), ("a", "cooldown", True), ("b", None, False)]


@pytest.mark.asyncio
async def test_two_concurrent_callers_only_one_probes() -> None:
    env = Env(CooldownPolicy(failures=1, cooldown_s=30))
    env.cooldowns.record_failure("a", err("server"))
    env.clock.advance(30)
    gate = asyncio.Event()
    calls: list[str] = []

    async def attempt(model: str, timeout_s: float) -> str:
        calls.append(model)
        if model == "a":
            await gate.wait()
        return f"from {model}"

    def call() -> asyncio.Task[tuple[str, list[Attempt]]]:
        return asyncio.create_task(call_with_fallbacks(
            ["a", "b"], attempt, retry=NO_JITTER, cooldowns=env.cooldowns, deadline_s=60,
            sleep=env.sleep, clock=env.clock))

    first, second = call(), call()
    second_result, second_attempts = await second
    assert second_result == "from b"
    assert second_attempts[0].skipped and second_attempts[0].model == "a"
    assert calls == ["a", "b"] and env.cooldowns.state("a") == "half_open"
    gate.set()
    first_result, _ = await first
    assert first_result == "from a"
    assert env.cooldowns.state("a") == "closed"


@pytest.mark.asyncio
async def test_probe_slot_is_released_when_the_attempt_crashes() -> None:
    env = Env(CooldownPolicy(failures=1, cooldown_s=30))
    env.cooldowns.record_failure("a", err("server"))
    env.clock.advance(30)
    script = env.script(a=[RuntimeError("bug")])
    with pytest.raises(RuntimeError):
        await env.call(["a"], script)
    assert env.cooldowns.state("a") == "half_open" and env.cooldowns.available("a")


# ---------------------------------------------------------------- everything failed


@pytest.mark.asyncio
async def test_all_failed_lists_every_attempt_with_502() -> None:
    env = Env()
    script = env.script(a=[err("server", "a down"), err("server", "a still down")],
                        b=[err("connection", "reset"), err("not_found", "no such model")])
    with pytest.raises(AllAttemptsFailedError) as info:
        await env.call(["a", "b"], script)
    error = info.value
    assert error.status == 502 and error.code == "all_upstreams_failed"
    assert error.attempts == [("a", "server: a down"), ("a", "server: a still down"),
                              ("b", "connection: reset"), ("b", "not_found: no such model")]
    assert [(a.model, a.number) for a in attempt_log(error)] == [("a", 1), ("a", 2), ("b", 1), ("b", 2)]


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["rate_limit", "overloaded"])
async def test_all_failed_on_a_busy_upstream_is_503(kind: str) -> None:
    env = Env()
    script = env.script(a=[err("server")] * 2, b=[err(kind)] * 2)
    with pytest.raises(AllAttemptsFailedError) as info:
        await env.call(["a", "b"], script)
    assert info.value.status == 503


@pytest.mark.asyncio
async def test_all_skipped_is_503() -> None:
    env = Env(CooldownPolicy(failures=1))
    env.cooldowns.record_failure("a", err("server"))
    env.cooldowns.record_failure("b", err("auth"))
    script = env.script()
    with pytest.raises(AllAttemptsFailedError) as info:
        await env.call(["a", "b"], script)
    assert info.value.status == 503 and script.calls == []
    assert info.value.attempts == [("a", "cooldown: skipped: breaker open"),
                                   ("b", "cooldown: skipped: breaker open")]
    assert all(a.skipped for a in attempt_log(info.value))


@pytest.mark.asyncio
async def test_skip_after_a_real_failure_is_not_all_skipped() -> None:
    env = Env(CooldownPolicy(failures=1))
    env.cooldowns.record_failure("b", err("server"))
    script = env.script(a=[err("permission")])
    with pytest.raises(AllAttemptsFailedError) as info:
        await env.call(["a", "b"], script)
    assert info.value.status == 502


# ---------------------------------------------------------------- bugs are not upstream failures


@pytest.mark.asyncio
@pytest.mark.parametrize("bug", [ValueError("oops"), TimeoutError("own timeout"), KeyError("k")])
async def test_other_exceptions_propagate_unchanged(bug: Exception) -> None:
    env = Env()
    script = env.script(a=[bug], b=["never"])
    with pytest.raises(type(bug)) as info:
        await env.call(["a", "b"], script)
    assert info.value is bug
    assert script.models == ["a"] and env.sleep.waits == []
    assert env.cooldowns.state("a") == "closed"


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("kwargs", [
    {"max_attempts": 0}, {"jitter": 1.5}, {"backoff_base_s": -1},
    {"retry_on": frozenset({"bad_request"})}, {"retry_on": frozenset({"teapot"})},
])
def test_retry_policy_rejects_nonsense(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


def test_cooldown_policy_rejects_unknown_kinds() -> None:
    with pytest.raises(ValueError):
        CooldownPolicy(immediate_kinds=frozenset({"teapot"}))


@pytest.mark.asyncio
async def test_empty_chain_and_non_positive_deadline_are_caller_bugs() -> None:
    env = Env()
    with pytest.raises(ValueError):
        await env.call([], env.script())
    with pytest.raises(ValueError):
        await env.call(["a"], env.script(), deadline_s=0)


@pytest.mark.asyncio
async def test_breaker_opened_by_another_caller_during_backoff_stops_the_retry() -> None:
    env = Env(CooldownPolicy(failures=3, cooldown_s=30))

    async def sleep_while_others_fail(seconds: float) -> None:
        await env.sleep(seconds)
        env.cooldowns.record_failure("a", err("auth"))  # a concurrent request trips the breaker

    script = env.script(a=[err("server")], b=["ok"])
    result, attempts = await call_with_fallbacks(
        ["a", "b"], script, retry=NO_JITTER, cooldowns=env.cooldowns, deadline_s=60,
        sleep=sleep_while_others_fail, clock=env.clock)
    assert result == "ok" and script.models == ["a", "b"]
    assert [(a.model, a.number, a.skipped) for a in attempts] == [("a", 1, False), ("a", 2, True),
                                                                  ("b", 1, False)]


@pytest.mark.asyncio
async def test_long_retry_after_benches_the_model_for_later_calls() -> None:
    env = Env(CooldownPolicy(failures=3, cooldown_s=30))
    script = env.script(a=[err("rate_limit", retry_after=120.0)], b=["ok", "ok"])
    await env.call(["a", "b"], script)
    assert env.sleep.waits == []
    env.clock.advance(60)
    _, attempts = await env.call(["a", "b"], script)
    assert attempts[0].skipped and script.models == ["a", "b", "b"]


# ---------------------------------------------------------------- Retry-After on a busy 503

ONE_TRY = RetryPolicy(max_attempts=1, jitter=0.0)


@pytest.mark.asyncio
async def test_everything_rate_limited_says_when_the_soonest_model_is_free() -> None:
    env = Env()
    script = env.script(a=[(0.5, err("rate_limit", retry_after=8.0))],
                        b=[(0.5, err("rate_limit", retry_after=2.0))])
    with pytest.raises(AllAttemptsFailedError) as info:
        await env.call(["a", "b"], script, retry=ONE_TRY)
    # a is free 8 s after its answer, which came 0.5 s before b's; b 2 s after its own.
    assert info.value.status == 503
    assert info.value.retry_after == pytest.approx(2.0)


@pytest.mark.asyncio
async def test_retry_after_counts_the_time_spent_on_later_models() -> None:
    env = Env()
    script = env.script(a=[(0.5, err("rate_limit", retry_after=3.0))],
                        b=[(2.5, err("overloaded", retry_after=9.0))])
    with pytest.raises(AllAttemptsFailedError) as info:
        await env.call(["a", "b"], script, retry=ONE_TRY)
    assert info.value.retry_after == pytest.approx(0.5)  # a's 3 s minus the 2.5 s spent on b


@pytest.mark.asyncio
async def test_all_skipped_says_when_the_first_breaker_closes() -> None:
    env = Env(CooldownPolicy(failures=1, cooldown_s=30.0))
    env.cooldowns.record_failure("a", err("server"))
    env.clock.now += 12.0
    env.cooldowns.record_failure("b", err("server"))
    with pytest.raises(AllAttemptsFailedError) as info:
        await env.call(["a", "b"], env.script())
    assert info.value.status == 503
    assert info.value.retry_after == pytest.approx(18.0)


@pytest.mark.asyncio
async def test_retry_after_is_unknown_when_a_busy_model_gave_none() -> None:
    env = Env()
    script = env.script(a=[(0.5, err("rate_limit", retry_after=3.0))], b=[(0.5, err("overloaded"))])
    with pytest.raises(AllAttemptsFailedError) as info:
        await env.call(["a", "b"], script, retry=ONE_TRY)
    assert info.value.status == 503 and info.value.retry_after is None


@pytest.mark.asyncio
async def test_a_502_has_no_retry_after() -> None:
    env = Env()
    script = env.script(a=[(0.5, err("rate_limit", retry_after=3.0))], b=[(0.5, err("server"))])
    with pytest.raises(AllAttemptsFailedError) as info:
        await env.call(["a", "b"], script, retry=ONE_TRY)
    assert info.value.status == 502 and info.value.retry_after is None
