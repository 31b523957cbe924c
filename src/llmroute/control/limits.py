"""Spend and rate limits: which counters a request charges (one per applicable limit, in the
limit's current calendar window), the reservation admission makes before the call, the settlement
after it, and the usage view (`GET /v1/budgets`, `llmroute budgets`).

Counters live in the shared state in integer units (nano-USD, requests, tokens). Admission reserves
the request's estimated amount against every hard limit at once (all or nothing); settlement adds
the difference between the real and the reserved amount. A counter therefore never passes its limit
at admission, and ends above it by at most what the requests then in flight used beyond their
reservations.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal
from fnmatch import fnmatchcase
from zoneinfo import ZoneInfo

from ..errors import LimitExceededError, UnavailableError
from ..settings import Allowance, LimitConfig, Scope, Settings, Window
from .state import NANO_USD, Charge, Refusal, SharedState, StateUnavailable
from .windows import Span, span

log = logging.getLogger("llmroute.limits")
#: How long a counter outlives its window (so `llmroute budgets` can still read the last one).
KEEP_AFTER_S = 3600.0


@dataclass(frozen=True)
class Subject:
    """Who and what a request is, as limit scopes see it."""

    key: str | None = None
    team: str | None = None
    user: str | None = None
    model: str | None = None
    policy: str | None = None

    def of(self, scope: Scope) -> str | None:
        """The request's value for `scope` (`*` for global; None: the scope does not apply)."""
        return "*" if scope == "global" else getattr(self, scope)


@dataclass(frozen=True)
class Limit:
    """One configured limit."""

    name: str
    scope: Scope
    match: tuple[str, ...] | None
    allowance: Allowance

    @property
    def cap(self) -> int:
        """The limit in counter units."""
        a = self.allowance
        return usd_units(a.usd) if a.usd is not None else int(a.requests or a.tokens or 0)

    def subject(self, who: Subject) -> str | None:
        """Which counter of this limit the request charges (None: the limit does not apply)."""
        value = who.of(self.scope)
        if value is None:
            return None
        if self.match is not None and not any(fnmatchcase(value, p) for p in self.match):
            return None
        return value


def limits_of(settings: Settings) -> tuple[Limit, ...]:
    """Every limit: the `limits:` table, then each key's own (`key:<name>:<window>:<unit>`)."""
    out = [_limit(c) for c in settings.limits]
    for key in settings.keys:
        for a in key.limits:
            out.append(Limit(f"key:{key.name}:{a.window}:{a.unit}", "key", (key.name,), a))
    return tuple(out)


def _limit(config: LimitConfig) -> Limit:
    allowance = Allowance.model_validate(config.model_dump(exclude={"name", "scope", "match"}))
    return Limit(config.name, config.scope, config.match, allowance)


def usd_units(usd: Decimal) -> int:
    """Dollars as counter units (nano-USD, rounded up)."""
    return int((usd * NANO_USD).to_integral_value(rounding=ROUND_CEILING))


@dataclass(frozen=True)
class Amount:
    """What a request costs (or is estimated to cost), in counter units."""

    usd: int = 0
    tokens: int = 0
    requests: int = 1

    def of(self, limit: Limit) -> int:
        """The part of this amount that `limit` counts."""
        unit = limit.allowance.unit
        return self.usd if unit == "usd" else self.tokens if unit == "tokens" else self.requests


@dataclass(frozen=True)
class Meter:
    """One counter a request charges: a limit, its subject, its current window, and the counter's
    key in the shared state (`lim:<limit>:<subject>:<window start>`)."""

    limit: Limit
    subject: str
    window: Span
    key: str


@dataclass
class Ticket:
    """What admission reserved for one request, settled when the request ends."""

    meters: tuple[Meter, ...] = ()
    reserved: Amount = Amount(requests=0)
    #: False when the state was unreachable and the request was let through uncounted.
    counted: bool = True
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Refused:
    """A hard limit that would be passed: reject, or downgrade to `limit.allowance.downgrade_to`."""

    limit: Limit
    retry_after_s: float

    def error(self) -> LimitExceededError:
        """The 429 the client gets."""
        a = self.limit.allowance
        code = "budget_exceeded" if a.unit == "usd" else "rate_limited"
        what = "spend limit" if a.unit == "usd" else f"{a.unit} rate limit"
        return LimitExceededError(
            f"The {what} {self.limit.name!r} ({_cap_text(a)} per {a.window}) is reached; it frees "
            f"up in {self.retry_after_s:.0f}s.", code=code, limit=self.limit.name,
            retry_after=self.retry_after_s)


def _cap_text(a: Allowance) -> str:
    return f"${a.usd}" if a.usd is not None else f"{a.requests or a.tokens} {a.unit}"


@dataclass(frozen=True)
class LimitUsage:
    """One limit's use in its current window, for one subject."""

    limit: Limit
    subject: str
    used: int
    resets_at: datetime

    @property
    def remaining(self) -> int:
        return max(0, self.limit.cap - self.used)

    def to_dict(self) -> dict[str, object]:
        """A JSON view: money as USD strings, counts as integers."""
        a = self.limit.allowance
        conv: Callable[[int], object] = ((lambda v: str(Decimal(v) / NANO_USD))
                                         if a.unit == "usd" else (lambda v: v))
        return {"name": self.limit.name, "scope": self.limit.scope, "subject": self.subject,
                "unit": a.unit, "window": a.window, "hard": a.hard, "limit": conv(self.limit.cap),
                "used": conv(self.used), "remaining": conv(self.remaining),
                "resets_at": self.resets_at.isoformat()}


class Limiter:
    """Reserves and settles a request's amount against every limit that applies to it."""

    def __init__(self, limits: Sequence[Limit], state: SharedState, zone: ZoneInfo, *,
                 budgets_when_down: str = "closed",
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.limits = tuple(limits)
        self.state = state
        self.zone = zone
        self.budgets_when_down = budgets_when_down
        self.clock = clock
        #: The current window of each kind with its tag (computed once per window, not per request).
        self._spans: dict[str, tuple[Span, str]] = {}

    def _span(self, window: Window, now: datetime) -> tuple[Span, str]:
        found = self._spans.get(window)
        if found is None or not found[0].start <= now < found[0].end:
            current = span(window, now, self.zone)
            found = self._spans[window] = (current, current.tag)
        return found

    def meters(self, who: Subject, now: datetime) -> tuple[Meter, ...]:
        """The counters a request by `who` charges at `now`."""
        out = []
        for limit in self.limits:
            subject = limit.subject(who)
            if subject is not None:
                window, tag = self._span(limit.allowance.window, now)
                out.append(Meter(limit, subject, window, f"lim:{limit.name}:{subject}:{tag}"))
        return tuple(out)

    async def admit(self, who: Subject, amount: Amount, *,
                    unchecked: frozenset[str] = frozenset()) -> Ticket | Refused:
        """Reserve `amount` on every meter: hard limits are checked (except those named in
        `unchecked`: a downgraded request still counts against the limit it passed)."""
        now = self.clock()
        meters = self.meters(who, now)
        if not meters:
            return Ticket(reserved=amount)
        charges = [Charge(m.key, amount.of(m.limit), _cap(m, unchecked),
                          m.window.left_s(now) + KEEP_AFTER_S) for m in meters]
        try:
            refusal = await self.state.reserve(charges)
        except StateUnavailable:
            return self._when_down(meters)
        if isinstance(refusal, Refusal):
            meter = meters[refusal.index]
            return Refused(meter.limit, meter.window.left_s(now))
        return Ticket(meters, amount)

    def _when_down(self, meters: Sequence[Meter]) -> Ticket:
        hard_budget = any(m.limit.allowance.hard and m.limit.allowance.unit == "usd" for m in meters)
        if hard_budget and self.budgets_when_down == "closed":
            raise UnavailableError("Spend limits cannot be checked right now (the shared state is "
                                   "unreachable); try again shortly.", code="limits_unavailable",
                                   retry_after=1.0)
        log.warning("shared state unreachable: request admitted without counting its limits")
        return Ticket(counted=False, headers={"x-llmroute-limits": "unchecked"})

    async def settle(self, ticket: Ticket, actual: Amount) -> None:
        """Replace the reservation by the real amount (never raises: the ledger keeps the truth)."""
        if not ticket.counted or not ticket.meters:
            return
        changes = [Charge(m.key, actual.of(m.limit) - ticket.reserved.of(m.limit), None,
                          m.window.left_s(self.clock()) + KEEP_AFTER_S) for m in ticket.meters]
        changes = [c for c in changes if c.amount]
        if not changes:
            return
        try:
            await self.state.adjust(changes)
        except StateUnavailable:
            log.warning("shared state unreachable: a request's spend was not settled in its limits")

    async def usage(self, who: Subject) -> list[LimitUsage]:
        """Use, remaining and reset time of every limit that applies to `who`."""
        now = self.clock()
        meters = self.meters(who, now)
        values = await self.state.read([m.key for m in meters]) if meters else []
        return [LimitUsage(m.limit, m.subject, v, m.window.end) for m, v in zip(meters, values,
                                                                              strict=True)]


def _cap(meter: Meter, unchecked: frozenset[str]) -> int | None:
    a = meter.limit.allowance
    return meter.limit.cap if a.hard and meter.limit.name not in unchecked else None
