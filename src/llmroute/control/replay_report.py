"""Replay's report (`control.replay`): each re-decided request's row, the quality labels, the totals
folded as rows arrive, and the report with its JSON form."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import cached_property
from typing import Any, Literal

from .replay_offline import Consultation

Source = Literal["observed", "estimated", "unknown"]


@dataclass(frozen=True)
class Quality:
    """A request's quality for one model: a value in [0, 1] (None when unknown) and its source."""

    value: float | None
    source: Source


@dataclass(frozen=True)
class QualitySummary:
    """Quality over many requests, split by source."""

    observed: int = 0
    estimated: int = 0
    unknown: int = 0
    observed_total: float = 0.0
    estimated_total: float = 0.0

    @classmethod
    def of(cls, qualities: Iterable[Quality]) -> QualitySummary:
        """Count and add up `qualities` by source."""
        summary = cls()
        for q in qualities:
            summary = summary.plus(q)
        return summary

    def plus(self, q: Quality) -> QualitySummary:
        """This summary with one more request's quality folded in."""
        if q.source == "observed":
            return replace(self, observed=self.observed + 1,
                           observed_total=self.observed_total + (q.value or 0.0))
        if q.source == "estimated":
            return replace(self, estimated=self.estimated + 1,
                           estimated_total=self.estimated_total + (q.value or 0.0))
        return replace(self, unknown=self.unknown + 1)

    @property
    def mean(self) -> float | None:
        """Mean quality over the requests with a known value (observed or estimated)."""
        known = self.observed + self.estimated
        return (self.observed_total + self.estimated_total) / known if known else None

    @property
    def observed_mean(self) -> float | None:
        """Mean of the observed values only."""
        return self.observed_total / self.observed if self.observed else None

    @property
    def estimated_mean(self) -> float | None:
        """Mean of the estimated values only."""
        return self.estimated_total / self.estimated if self.estimated else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {"mean": _round(self.mean), "observed": self.observed,
                "observed_mean": _round(self.observed_mean), "estimated": self.estimated,
                "estimated_mean": _round(self.estimated_mean), "unknown": self.unknown}


@dataclass(frozen=True)
class ReplayRow:
    """One logged request: what served it and what it cost, and what the candidate would do."""

    request_id: str
    served_model: str
    model: str
    tier: str
    actual_cost_usd: Decimal | None
    model_cost_usd: Decimal | None
    served_quality: Quality
    quality: Quality
    consultations: tuple[Consultation, ...] = ()

    @property
    def router_cost_usd(self) -> Decimal | None:
        """The LLM-router consultations' estimated cost (None when one of them is unpriced)."""
        costs = [c.cost_usd for c in self.consultations]
        return None if None in costs else sum((c for c in costs if c is not None), Decimal(0))

    @property
    def cost_usd(self) -> Decimal | None:
        """The candidate's estimated cost: its model plus its router consultations."""
        router = self.router_cost_usd
        return None if self.model_cost_usd is None or router is None else self.model_cost_usd + router


@dataclass(frozen=True)
class ReplayTotals:
    """What a replay report shows, folded over its rows: counts, exact money sums over the rows
    priced on both sides, router-LLM calls, quality by source and the model mixes (first seen first)."""

    replayed: int = 0
    compared: int = 0
    actual_cost_usd: Decimal = Decimal(0)
    model_cost_usd: Decimal = Decimal(0)
    router_cost_usd: Decimal = Decimal(0)
    router_calls: Mapping[str, int] = field(default_factory=dict)
    served_quality: QualitySummary = QualitySummary()
    quality: QualitySummary = QualitySummary()
    mix: Mapping[str, int] = field(default_factory=dict)
    served_mix: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, rows: Iterable[ReplayRow]) -> ReplayTotals:
        """The totals of `rows`, in order."""
        fold = TotalsFold()
        for row in rows:
            fold.add(row)
        return fold.totals()


class TotalsFold:
    """Folds replay rows one at a time into `ReplayTotals` (the same sums, in the same order, as
    over the whole list), so a streamed replay keeps no rows."""

    def __init__(self) -> None:
        self.replayed = 0
        self.compared = 0
        self.actual = self.model = self.router = Decimal(0)
        self.calls: Counter[str] = Counter()
        self.served_quality = QualitySummary()
        self.quality = QualitySummary()
        self.mix: Counter[str] = Counter()
        self.served_mix: Counter[str] = Counter()

    def add(self, row: ReplayRow) -> None:
        """Fold one row in."""
        self.replayed += 1
        if row.actual_cost_usd is not None and row.cost_usd is not None:
            self.compared += 1
            self.actual += row.actual_cost_usd
            self.model += row.model_cost_usd or Decimal(0)
            self.router += row.router_cost_usd or Decimal(0)
        for c in row.consultations:
            self.calls["answered" if c.answered else "unanswered"] += 1
            self.calls["unpriced"] += c.cost_usd is None
        self.served_quality = self.served_quality.plus(row.served_quality)
        self.quality = self.quality.plus(row.quality)
        self.mix[row.model] += 1
        self.served_mix[row.served_model] += 1

    def totals(self) -> ReplayTotals:
        """The totals so far."""
        return ReplayTotals(self.replayed, self.compared, self.actual, self.model, self.router,
                            Counter(self.calls), self.served_quality, self.quality,
                            dict(self.mix.most_common()), dict(self.served_mix.most_common()))


@dataclass(frozen=True)
class ReplayReport:
    """A policy's replay over logged entries: the skipped counts by reason and the totals, folded
    while replaying (`folded`, from a streamed replay, which keeps no rows) or derived from `rows`."""

    policy: str
    read: int
    rows: tuple[ReplayRow, ...]
    skipped: Mapping[str, int]
    folded: ReplayTotals | None = None

    @cached_property
    def totals(self) -> ReplayTotals:
        """The report's numbers: `folded` when given, else folded over `rows`."""
        return self.folded if self.folded is not None else ReplayTotals.of(self.rows)

    @property
    def replayed(self) -> int:
        """Requests re-decided."""
        return self.totals.replayed

    @property
    def compared(self) -> tuple[ReplayRow, ...]:
        """The kept rows priced on both sides (none when the rows were not kept: see
        `compared_count`)."""
        return tuple(r for r in self.rows if r.actual_cost_usd is not None and r.cost_usd is not None)

    @property
    def compared_count(self) -> int:
        """How many requests are priced on both sides: the cost totals are summed over these."""
        return self.totals.compared

    @property
    def actual_cost_usd(self) -> Decimal:
        """What the compared requests actually cost (logged)."""
        return self.totals.actual_cost_usd

    @property
    def model_cost_usd(self) -> Decimal:
        """The candidate's models' estimated cost over the compared requests."""
        return self.totals.model_cost_usd

    @property
    def router_cost_usd(self) -> Decimal:
        """The candidate's LLM-router consultations' estimated cost over the compared requests."""
        return self.totals.router_cost_usd

    @property
    def cost_usd(self) -> Decimal:
        """The candidate's estimated cost in all (models + router calls) over the compared requests."""
        return self.model_cost_usd + self.router_cost_usd

    @property
    def savings_pct(self) -> float | None:
        """How much cheaper the candidate is than what was served, in percent (negative: dearer)."""
        actual = self.actual_cost_usd
        return float((actual - self.cost_usd) / actual * 100) if actual else None

    @property
    def router_calls(self) -> Counter[str]:
        """LLM-router consultations: `answered` (with the logged tier), `unanswered`, `unpriced`."""
        return Counter(self.totals.router_calls)

    @property
    def served_quality(self) -> QualitySummary:
        """Quality of what was served: observed where there is feedback, else estimated."""
        return self.totals.served_quality

    @property
    def quality(self) -> QualitySummary:
        """The candidate's expected quality: observed where it picked the model that answered."""
        return self.totals.quality

    def mix(self, served: bool = False) -> dict[str, int]:
        """Requests per model, most used first: the candidate's picks (or what served them)."""
        return dict(self.totals.served_mix if served else self.totals.mix)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (money as exact decimal strings; rows left out)."""
        calls = self.router_calls
        return {
            "policy": self.policy, "read": self.read, "replayed": self.replayed,
            "skipped": dict(self.skipped), "compared": self.compared_count,
            "actual_cost_usd": _money(self.actual_cost_usd),
            "cost_usd": _money(self.cost_usd), "model_cost_usd": _money(self.model_cost_usd),
            "router_cost_usd": _money(self.router_cost_usd),
            "savings_pct": _round(self.savings_pct, 2),
            "router_calls": sum(calls[k] for k in ("answered", "unanswered")),
            "router_calls_answered": calls["answered"], "router_calls_unpriced": calls["unpriced"],
            "served_quality": self.served_quality.to_dict(), "quality": self.quality.to_dict(),
            "served_mix": self.mix(served=True), "mix": self.mix(),
        }


def _money(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)
