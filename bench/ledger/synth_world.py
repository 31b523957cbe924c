"""The synthetic ledger's world: models with real-ish prices, gateway keys in teams, routing
policies and their routers, experiment arms, error kinds, and the traffic's daily and hourly shape.

Everything here is data plus the `Timeline` (how many requests fall in each hour of the window);
`synth_draw` draws requests from it. Prices are exact `Decimal` USD per 1M tokens, each a multiple
of $0.001, so a cost is an integer number of nano-dollars: tokens x (price x 1000) x 1e-9.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np

HOUR_US = 3_600_000_000
#: Decimal places of a price x 1000: prices are whole thousandths of a dollar per 1M tokens.
PRICE_SCALE = 1000
#: A cost in nano-dollars is tokens x (price x PRICE_SCALE): 1e-9 USD per unit.
NANO_DIGITS = 9


@dataclass(frozen=True)
class Model:
    """One model: its tier, prices (None: unpriced, e.g. self-hosted) and typical latency."""

    name: str
    tier: str
    input_per_m: Decimal | None
    output_per_m: Decimal | None
    cached_per_m: Decimal | None
    median_latency_s: float

    @property
    def priced(self) -> bool:
        return self.input_per_m is not None and self.output_per_m is not None


def _price(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _model(name: str, tier: str, prices: tuple[str | None, str | None, str | None],
           median_latency_s: float) -> Model:
    return Model(name, tier, _price(prices[0]), _price(prices[1]), _price(prices[2]), median_latency_s)


MODELS: tuple[Model, ...] = (
    _model("openai/gpt-4o-mini", "simple", ("0.15", "0.6", "0.075"), 0.9),
    _model("openai/gpt-4.1-nano", "simple", ("0.1", "0.4", "0.025"), 0.7),
    _model("local/llama-3.1-8b", "simple", (None, None, None), 0.6),
    _model("openai/gpt-4.1-mini", "medium", ("0.4", "1.6", "0.1"), 1.6),
    _model("anthropic/claude-haiku-4-5", "medium", ("1", "5", "0.1"), 1.4),
    _model("anthropic/claude-sonnet-4-5", "complex", ("3", "15", "0.3"), 3.8),
    _model("openai/gpt-4.1", "complex", ("2", "8", "0.5"), 3.0),
    _model("openai/gpt-4o", "complex", ("2.5", "10", "1.25"), 2.6),
)
MODEL_INDEX: dict[str, int] = {m.name: i for i, m in enumerate(MODELS)}
#: What every request is compared against (the gateway's default: the most capable tier's model).
BASELINE = "anthropic/claude-sonnet-4-5"
TIERS: tuple[str, ...] = ("simple", "medium", "complex")
#: Per tier: (model, share of the tier's traffic); the first is the tier's primary.
TIER_MODELS: dict[str, tuple[tuple[str, float], ...]] = {
    "simple": (("openai/gpt-4o-mini", 0.66), ("openai/gpt-4.1-nano", 0.31), ("local/llama-3.1-8b", 0.03)),
    "medium": (("openai/gpt-4.1-mini", 0.7), ("anthropic/claude-haiku-4-5", 0.3)),
    "complex": (("anthropic/claude-sonnet-4-5", 0.6), ("openai/gpt-4.1", 0.3), ("openai/gpt-4o", 0.1)),
}


@dataclass(frozen=True)
class Key:
    """A gateway key: its team, share of the traffic, share of streams, how many distinct users
    send through it (0: none named) and whether its requests carry chat sessions."""

    name: str
    team: str
    weight: float
    stream_share: float
    users: int
    sessions: bool = False


KEYS: tuple[Key, ...] = (
    Key("search-prod", "search", 30, 0.35, 400),
    Key("search-staging", "search", 3, 0.35, 12),
    Key("support-bot", "support", 25, 0.6, 3000, sessions=True),
    Key("support-batch", "support", 12, 0.0, 0),
    Key("support-eval", "support", 2, 0.1, 5),
    Key("data-etl", "data", 15, 0.0, 0),
    Key("data-notebooks", "data", 8, 0.3, 40),
    Key("data-ci", "data", 5, 0.0, 0),
)


@dataclass(frozen=True)
class Policy:
    """A routing policy: its share of the traffic outside experiments, the routers whose verdicts
    it records (with shares) and the tiers it picks (simple, medium, complex shares)."""

    name: str
    weight: float
    routers: tuple[tuple[str, float], ...]
    tiers: tuple[float, float, float]


POLICIES: tuple[Policy, ...] = (
    Policy("default", 0.55, (("rules", 0.6), ("classifier", 0.4)), (0.5, 0.3, 0.2)),
    Policy("learned", 0.15, (("classifier", 1.0),), (0.45, 0.35, 0.2)),
    Policy("rules", 0.10, (("rules", 1.0),), (0.3, 0.5, 0.2)),
    Policy("cheap", 0.12, (("rules", 1.0),), (0.7, 0.25, 0.05)),
    Policy("quality", 0.08, (("fixed", 1.0),), (0.0, 0.0, 1.0)),
)
POLICY_INDEX: dict[str, int] = {p.name: i for i, p in enumerate(POLICIES)}
ROUTERS: tuple[str, ...] = ("rules", "classifier", "fixed")
#: Per router: the reasons its verdicts give.
REASONS: dict[str, tuple[str, ...]] = {
    "rules": ("rule short", "rule code-words", "rule reasoning-words", "rule code-block",
              "rule tool-use", "no rule matched: default tier"),
    "classifier": ("P(good) 0.91 >= 0.7 on the cheapest tier", "P(good) 0.78 >= 0.7 on medium",
                   "no tier reaches 0.7: the most capable"),
    "fixed": ("fixed policy: always complex",),
}


@dataclass(frozen=True)
class Arm:
    """An experiment arm: its `experiment:arm` label, the policy it serves, its share of all traffic."""

    label: str
    policy: str
    share: float


ARMS: tuple[Arm, ...] = (
    Arm("cheap-rollout:control", "default", 0.075),
    Arm("cheap-rollout:cheap", "cheap", 0.075),
    Arm("learned-v2:control", "default", 0.02),
    Arm("learned-v2:learned", "learned", 0.02),
    Arm("learned-v2:rules", "rules", 0.02),
)


@dataclass(frozen=True)
class ErrorKind:
    """A failed request: its code, HTTP status and type, share of errors, and its upstream tries
    (0: refused before any call, by a limit; the attempts' error kind, status and message)."""

    code: str
    http_status: int
    error_type: str
    weight: float
    attempts: int
    attempt_kind: str = ""
    attempt_status: int | None = None
    message: str = ""


ERRORS: tuple[ErrorKind, ...] = (
    ErrorKind("all_upstreams_failed", 502, "api_error", 0.30, 2, "server", 502, "HTTP 502: bad gateway"),
    ErrorKind("rate_limit", 429, "rate_limit_error", 0.20, 1, "rate_limit", 429,
              "HTTP 429: rate limit reached for requests"),
    ErrorKind("timeout", 504, "timeout", 0.15, 1, "timeout", None, "no first byte within 60.0 s"),
    ErrorKind("context_window", 400, "invalid_request_error", 0.10, 1, "context_window", 400,
              "HTTP 400: maximum context length exceeded"),
    ErrorKind("overloaded", 503, "api_error", 0.05, 1, "overloaded", 529, "HTTP 529: overloaded"),
    ErrorKind("budget_exceeded", 429, "rate_limit_error", 0.10, 0),
    ErrorKind("rate_limited", 429, "rate_limit_error", 0.10, 0),
)
#: Failed first tries of requests that then succeeded on a fallback: (kind, status, message).
FALLBACK_FAILURES: tuple[tuple[str, int | None, str], ...] = (
    ("rate_limit", 429, "HTTP 429: rate limit reached for requests"),
    ("server", 500, "HTTP 500: internal server error"),
    ("timeout", None, "no first byte within 60.0 s"),
)
COMMENTS: tuple[str, ...] = ("great answer", "too long", "wrong language", "missed the point",
                             "hallucinated a citation", "perfect, thanks")
#: Per tier: P(rating = 1..5) and P(task_success).
RATINGS: dict[str, tuple[float, ...]] = {
    "simple": (0.06, 0.09, 0.2, 0.35, 0.3),
    "medium": (0.04, 0.07, 0.17, 0.37, 0.35),
    "complex": (0.03, 0.05, 0.15, 0.37, 0.4),
}
SUCCESS: dict[str, float] = {"simple": 0.78, "medium": 0.84, "complex": 0.9}


def nano_price(price: Decimal | None) -> int:
    """`price` x PRICE_SCALE as an int (-1 for None); refuses prices finer than $0.001 per 1M."""
    if price is None:
        return -1
    scaled = price * PRICE_SCALE
    if scaled != scaled.to_integral_value():
        raise ValueError(f"price {price} is not a whole number of thousandths")
    return int(scaled)


def hour_weight(start: datetime) -> float:
    """Relative traffic in the hour starting at `start` (UTC): a working-day bump peaking mid
    afternoon UTC on a night floor, weekends at 45 %."""
    hour = start.hour + 0.5
    bump = np.exp(-(((hour - 15.0) / 4.0) ** 2)) + 0.35 * np.exp(-(((hour - 9.0) / 2.5) ** 2))
    day = 0.45 if start.weekday() >= 5 else 1.0
    return float(day * (0.18 + bump))


class Timeline:
    """How many of `rows` requests fall in each hour of the `days` before `end` (a multinomial draw
    over the hours' weights, traffic growing 30 % over the window), and their times, in order."""

    def __init__(self, rows: int, days: int, end: datetime, seed: int) -> None:
        hours = days * 24
        self.end_us = int(end.astimezone(UTC).timestamp() * 1_000_000)
        self.starts = self.end_us - (hours - np.arange(hours, dtype=np.int64)) * HOUR_US
        weights = np.array([hour_weight(datetime.fromtimestamp(int(s) / 1e6, UTC)) for s in self.starts])
        weights *= 1.0 + 0.3 * np.arange(hours) / max(hours - 1, 1)
        rng = np.random.default_rng([seed, 0x7111E])
        self.cumulative = np.cumsum(rng.multinomial(rows, weights / weights.sum()))

    def times(self, first: int, stop: int, rng: np.random.Generator) -> np.ndarray:
        """Times (µs since the epoch, sorted) of requests number first..stop-1."""
        hour = np.searchsorted(self.cumulative, np.arange(first, stop), side="right")
        offsets = rng.integers(0, HOUR_US, size=stop - first, dtype=np.int64)
        return np.sort(np.minimum(self.starts[hour] + offsets, self.end_us - 1))
