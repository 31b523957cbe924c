"""Limits: calendar windows, the limiter's reserve / settle / usage on the in-process state, and the
gateway's admission stage in process (429s, downgrades, the state being down)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openai
import pytest
import yaml

import llmroute
from llmroute.config import load
from llmroute.control.limits import Amount, Limit, Limiter, Refused, Subject, Ticket, usd_units
from llmroute.control.state import NANO_USD, StateUnavailable
from llmroute.control.state_memory import MemoryState
from llmroute.control.windows import span
from llmroute.errors import UnavailableError
from llmroute.settings import Allowance, Settings
from llmroute.testing.upstream import FakeUpstream

PARIS = ZoneInfo("Europe/Paris")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# -- windows ---------------------------------------------------------------------------------
def test_day_window_is_local_midnight_to_midnight_across_dst() -> None:
    # 2026-03-29: Paris moves from +01:00 to +02:00, so that day lasts 23 hours.
    day = span("day", at("2026-03-29T12:00:00+02:00"), PARIS)
    assert day.start == at("2026-03-29T00:00:00+01:00")
    assert day.end == at("2026-03-30T00:00:00+02:00")
    assert day.end - day.start == timedelta(hours=23)


def test_week_month_minute_and_half_hour_zone_windows() -> None:
    week = span("week", at("2026-12-05T10:00:00+00:00"), ZoneInfo("UTC"))  # a Saturday
    assert (week.start, week.end) == (at("2026-11-30T00:00:00+00:00"), at("2026-12-07T00:00:00+00:00"))
    month = span("month", at("2026-12-31T23:30:00+00:00"), ZoneInfo("UTC"))
    assert (month.start, month.end) == (at("2026-12-01T00:00:00+00:00"), at("2027-01-01T00:00:00+00:00"))
    minute = span("minute", at("2026-12-05T10:07:42.5+00:00"), PARIS)
    assert (minute.start, minute.end) == (at("2026-12-05T10:07:00+00:00"), at("2026-12-05T10:08:00+00:00"))
    hour = span("hour", at("2026-12-05T10:07:00+00:00"), ZoneInfo("Asia/Kolkata"))  # +05:30
    assert (hour.start, hour.end) == (at("2026-12-05T09:30:00+00:00"), at("2026-12-05T10:30:00+00:00"))
    assert minute.left_s(at("2026-12-05T10:07:42.5+00:00")) == 17.5


# -- the limiter -----------------------------------------------------------------------------
NOW = at("2026-12-05T10:07:30+00:00")


def limiter(*limits: Limit, state: Any = None, when_down: str = "closed") -> Limiter:
    return Limiter(limits, state or MemoryState(), ZoneInfo("UTC"), budgets_when_down=when_down,
                   clock=lambda: NOW)


def usd_limit(name: str, usd: str, **kw: Any) -> Limit:
    scope = kw.pop("scope", "global")
    match = kw.pop("match", None)
    return Limit(name, scope, match, Allowance(usd=Decimal(usd), **kw))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_hard_budget_reserves_refuses_and_settles_to_the_real_cost() -> None:
    lim = limiter(usd_limit("g", "1"))
    who = Subject(key="a")
    est = Amount(usd=usd_units(Decimal("0.4")))

    async def go() -> None:
        first, second = await lim.admit(who, est), await lim.admit(who, est)
        assert isinstance(first, Ticket) and isinstance(second, Ticket)
        third = await lim.admit(who, est)  # 0.8 reserved + 0.4 > 1
        assert isinstance(third, Refused)
        assert third.retry_after_s == pytest.approx(13 * 3600 + 52 * 60 + 30)  # to midnight UTC
        error = third.error()
        assert (error.status, error.code, error.type) == (429, "budget_exceeded", "rate_limit_error")
        # the first request really cost 0.1: settling frees 0.3, and the third now fits
        await lim.settle(first, Amount(usd=usd_units(Decimal("0.1"))))
        assert [u.used for u in await lim.usage(who)] == [usd_units(Decimal("0.5"))]
        assert isinstance(await lim.admit(who, est), Ticket)
        usage = (await lim.usage(who))[0].to_dict()
        assert usage["used"] == "0.9" and usage["remaining"] == "0.1" and usage["limit"] == "1"
        assert usage["resets_at"] == "2026-12-06T00:00:00+00:00"

    run(go())


def test_rate_limit_scopes_match_and_unchecked() -> None:
    per_user = Limit("u", "user", None, Allowance(window="minute", requests=2))
    only_b = usd_limit("b-only", "0.000000001", scope="key", match=("b*",))
    lim = limiter(per_user, only_b)

    async def go() -> None:
        alice, bob = Subject(key="a", user="alice"), Subject(key="a", user="bob")
        assert [m.limit.name for m in lim.meters(alice, NOW)] == ["u"]
        assert [m.limit.name for m in lim.meters(Subject(key="bee"), NOW)] == ["b-only"]
        for _ in range(2):
            assert isinstance(await lim.admit(alice, Amount()), Ticket)
        refused = await lim.admit(alice, Amount())
        assert isinstance(refused, Refused) and refused.error().code == "rate_limited"
        assert refused.retry_after_s == 30.0
        assert isinstance(await lim.admit(bob, Amount()), Ticket)  # each user has a counter
        # a downgraded request still counts against the limit it passed
        assert isinstance(await lim.admit(alice, Amount(), unchecked=frozenset({"u"})), Ticket)
        assert [u.used for u in await lim.usage(alice)] == [3]

    run(go())


def test_soft_limits_count_but_never_refuse() -> None:
    lim = limiter(usd_limit("soft", "0.000000001", hard=False))

    async def go() -> None:
        for _ in range(3):
            assert isinstance(await lim.admit(Subject(), Amount(usd=NANO_USD)), Ticket)
        assert [u.used for u in await lim.usage(Subject())] == [3 * NANO_USD]

    run(go())


class DownState(MemoryState):
    async def reserve(self, charges: Any) -> Any:
        raise StateUnavailable("down")


def test_state_down_fails_closed_for_hard_budgets_and_open_otherwise() -> None:
    budget = usd_limit("g", "1")
    rate = Limit("r", "global", None, Allowance(window="minute", requests=1))

    async def go() -> None:
        with pytest.raises(UnavailableError) as info:
            await limiter(budget, state=DownState()).admit(Subject(), Amount())
        assert (info.value.status, info.value.code) == (503, "limits_unavailable")
        opened = await limiter(budget, state=DownState(), when_down="open").admit(Subject(), Amount())
        assert isinstance(opened, Ticket) and not opened.counted
        assert opened.headers == {"x-llmroute-limits": "unchecked"}
        rated = await limiter(rate, state=DownState()).admit(Subject(), Amount())
        assert isinstance(rated, Ticket) and not rated.counted

    run(go())


# -- the admission stage through the in-process client ---------------------------------------
@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


def settings_with(upstream: FakeUpstream, tmp_path: Path, **extra: Any) -> Settings:
    upstream.reset()
    config: dict[str, Any] = {
        "providers": {"fake": {"type": "openai", "base_url": upstream.openai_base_url}},
        "models": {"fake/small": {"deployment": "fake", "input_per_m": 1000, "output_per_m": 1000},
                   "fake/big": {"deployment": "fake", "input_per_m": 10000, "output_per_m": 10000}},
        "tiers": {"simple": {"model": "fake/small"}, "medium": {"model": "fake/small"},
                  "complex": {"model": "fake/big"}},
        "policies": {"default": {"router": "fixed", "tier": "complex"},
                     "cheap": {"router": "fixed", "tier": "simple"}},
        "ledger": {"enabled": False},
        **extra,
    }
    path = tmp_path / "llmroute.yaml"
    path.write_text(yaml.safe_dump(config))
    return load(path, environ={})


HI = [{"role": "user", "content": "hi"}]


def test_gateway_rejects_past_a_hard_limit_with_retry_after(upstream: FakeUpstream,
                                                            tmp_path: Path) -> None:
    settings = settings_with(upstream, tmp_path, limits=[
        {"name": "two-a-minute", "window": "minute", "requests": 2}])
    with llmroute.Client(settings) as client:
        for _ in range(2):
            client.chat.completions.create(model="auto", messages=HI)
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(model="auto", messages=HI)
    body = info.value.body
    assert isinstance(body, dict) and body["code"] == "rate_limited"
    assert "two-a-minute" in body["message"]


def test_gateway_downgrades_past_a_limit(upstream: FakeUpstream, tmp_path: Path) -> None:
    # one token at fake/big costs $0.01: a $0.05 budget admits no request of ~20 tokens
    settings = settings_with(upstream, tmp_path, limits=[
        {"name": "tight", "usd": "0.05", "on_exceed": "downgrade", "downgrade_to": "cheap"}])
    with llmroute.Client(settings) as client:
        reply = client.chat.completions.create(model="auto", messages=HI, max_tokens=10)
    assert reply.model == "fake/small"
    outcome = reply.llmroute_outcome  # type: ignore[attr-defined]
    assert outcome.extra_headers == {"x-llmroute-limit": "tight", "x-llmroute-limit-action":
                                     "downgraded", "x-llmroute-downgraded-to": "cheap"}
    assert outcome.plan.policy == "cheap"
