"""The ledger's record of one request (`LedgerEntry`, with its `AttemptRecord`s) and its JSON form.

One entry is written per request, success or failure. Money is `Decimal | None`: None means the
request was unpriced or its cost unknown, never zero. The JSON form (used by the writer's spool)
keeps money exact by writing Decimals as strings and times as ISO 8601 in UTC.
"""

from __future__ import annotations

import dataclasses
import json
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from ..frozen import quick_init
from ..resilience import Attempt

Status = Literal["ok", "error"]
STATUSES: frozenset[str] = frozenset({"ok", "error"})
#: Fields holding a UTC datetime, money as Decimal, and the attempt list: they need converting.
TIME_FIELDS: frozenset[str] = frozenset({"ts", "feedback_ts"})
MONEY_FIELDS: frozenset[str] = frozenset({"cost_usd", "baseline_cost_usd", "routing_cost_usd",
                                          "cache_saved_usd", "prompt_cache_saved_usd"})
#: `LedgerEntry.cache`: the response cache answered (exact or semantic match), missed (the
#: upstream answered and the answer was stored), or was bypassed (off for this request).
CACHE_STATES: frozenset[str] = frozenset({"hit", "semantic", "miss", "bypass"})


@quick_init
@dataclass(frozen=True)
class AttemptRecord:
    """One try of one model as the ledger keeps it; `error_kind` None means it succeeded;
    `router`: the LLM router's classification call (kept in the JSON only when true)."""

    model: str
    error_kind: str | None
    message: str = ""
    status: int | None = None
    latency_s: float = 0.0
    skipped: bool = False
    router: bool = False

    @classmethod
    def from_attempt(cls, attempt: Attempt) -> AttemptRecord:
        """The record of a `resilience.Attempt`."""
        return cls(attempt.model, attempt.error_kind, attempt.message, attempt.status,
                   attempt.latency_s, attempt.skipped, attempt.router)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        # the fields in order, as dataclasses.asdict gives them (without its deep copy)
        data: dict[str, Any] = {
            "model": self.model, "error_kind": self.error_kind, "message": self.message,
            "status": self.status, "latency_s": self.latency_s, "skipped": self.skipped}
        if self.router:
            data["router"] = self.router
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AttemptRecord:
        """The inverse of `to_dict`; unknown keys are ignored."""
        return cls(
            model=str(data["model"]),
            error_kind=_opt_str(data.get("error_kind")),
            message=str(data.get("message") or ""),
            status=_opt_int(data.get("status")),
            latency_s=float(data.get("latency_s") or 0.0),
            skipped=bool(data.get("skipped", False)),
            router=bool(data.get("router", False)),
        )


@dataclass(frozen=True, kw_only=True)
class LedgerEntry:
    """What happened to one request: who asked, how it was routed, what answered, usage and cost,
    and (filled in later) the caller's feedback. Text is only present when storing it is enabled."""

    request_id: str
    ts: datetime
    status: Status
    http_status: int
    key_name: str | None = None
    user: str | None = None
    session: str | None = None
    policy: str | None = None
    router: str | None = None
    tier: str | None = None
    confidence: float | None = None
    reason: str | None = None
    experiment_arm: str | None = None
    model: str | None = None
    attempts: tuple[AttemptRecord, ...] = ()
    error_type: str | None = None
    error_code: str | None = None
    stream: bool = False
    latency_s: float = 0.0
    ttft_s: float | None = None
    upstream_latency_s: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    #: True when the upstream reported no usage and the gateway counted the tokens itself.
    usage_estimated: bool = False
    cost_usd: Decimal | None = None
    baseline_cost_usd: Decimal | None = None
    baseline_model: str | None = None
    prompt_text: str | None = None
    response_text: str | None = None
    user_rating: int | None = None
    task_success: bool | None = None
    feedback_comment: str | None = None
    feedback_ts: datetime | None = None
    #: Shadow arms' decisions on this request (JSON array: experiment, arm, policy, model, tier,
    #: estimated_cost_usd, predicted_quality), never called.
    shadow: str | None = None
    #: Learning online (issue 13): the request went to the Thompson choice, not the router's own.
    explored: bool = False
    #: Learning online: the prompt's latent vector as the classifier saw it (`learn.online_hub`:
    #: float16, base64; ~90 characters), kept so that feedback can update the router. None when
    #: learning online is off.
    latent: str | None = None
    #: What the LLM router's classification calls cost (issue 14), part of `cost_usd`; None when
    #: the request made none (or only to an unpriced model). Migration 0007_routing_cost.
    routing_cost_usd: Decimal | None = None
    #: Issue 15, migration 0008_cache. Tokens written to the provider's prompt cache (part of
    #: `input_tokens`, as `cached_tokens` is).
    cache_write_tokens: int | None = None
    #: What the provider's prompt cache saved on this call (`ModelSpec.prompt_cache_savings`: the
    #: reads' discount less the writes' premium; may be negative); None when unpriced.
    prompt_cache_saved_usd: Decimal | None = None
    #: The response cache: one of CACHE_STATES, None when the response cache is off.
    cache: str | None = None
    #: On a response-cache hit, what the upstream call it replaced cost (the cached answer's own
    #: cost; `cost_usd` is 0), None otherwise.
    cache_saved_usd: Decimal | None = None
    #: On a response-cache hit, the request id whose answer was served (for judging semantic hits).
    cached_from: str | None = None
    #: On a semantic hit, the similarity of the prompt to the cached one.
    cache_similarity: float | None = None

    def __post_init__(self) -> None:
        if not self.request_id:
            raise ValueError("request_id must not be empty")
        if self.status not in STATUSES:
            raise ValueError(f"status must be 'ok' or 'error', got {self.status!r}")
        ts = self.ts
        if ts.__class__ is not datetime or ts.tzinfo is not UTC:  # else as_utc gives ts itself
            object.__setattr__(self, "ts", as_utc(ts, "ts"))
        if self.feedback_ts is not None:
            object.__setattr__(self, "feedback_ts", as_utc(self.feedback_ts, "feedback_ts"))
        if self.user_rating is not None:
            check_rating(self.user_rating)
        if self.cache is not None and self.cache not in CACHE_STATES:
            raise ValueError(f"cache must be one of {sorted(CACHE_STATES)} or None, got {self.cache!r}")
        for value in _MONEY_VALUES(self):  # one C call for the five fields; names on a failure
            if value is not None and not (isinstance(value, Decimal) and value.is_finite()):
                for name in MONEY_FIELDS:
                    value = getattr(self, name)
                    if value is not None and not (isinstance(value, Decimal) and value.is_finite()):
                        raise ValueError(f"{name} must be a finite Decimal or None, got {value!r}")
        if not isinstance(self.attempts, tuple):
            object.__setattr__(self, "attempts", tuple(self.attempts))

    @property
    def savings_usd(self) -> Decimal | None:
        """Baseline cost minus actual cost, when both are priced."""
        if self.cost_usd is None or self.baseline_cost_usd is None:
            return None
        return self.baseline_cost_usd - self.cost_usd

    @property
    def unpriced(self) -> bool:
        """Its cost is unknown although it made a paid call: no `cost_usd`, and it was answered
        (status ok), or the upstream reported usage, or the LLM router's call answered. A failure
        that made no paid call cost nothing: it is not unpriced. Stored (migration 0009) so that
        SQL counts it; the migration's backfill is the same test in SQL."""
        if self.cost_usd is not None:
            return False
        return (self.status == "ok" or self.input_tokens is not None
                or self.output_tokens is not None
                or any(a.router and a.error_kind is None and not a.skipped for a in self.attempts))

    @property
    def fallback(self) -> bool:
        """Answered by a model other than the first one tried (the LLM router's calls and skipped
        tries left out): what `llmroute_fallbacks` counts too. Stored (migration 0009)."""
        for attempt in self.attempts:  # the first one tried (read per entry by rows, rollups, metrics)
            if not attempt.skipped and not attempt.router:
                return bool(self.model) and attempt.model != self.model
        return False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view: Decimals as exact strings, datetimes as ISO 8601 UTC, attempts as dicts."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                out[f.name] = None
            elif f.name in TIME_FIELDS:
                out[f.name] = value.isoformat()
            elif f.name in MONEY_FIELDS:
                out[f.name] = money_text(value)
            elif f.name == "attempts":
                out[f.name] = [a.to_dict() for a in value]
            else:
                out[f.name] = value
        return out

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> LedgerEntry:
        """`LedgerEntry(**values)` (the same checks, in `__post_init__`; the same object, equal
        and with its fields in the same order) without the generated `__init__`'s one
        `object.__setattr__` per field: the gateway builds one per request (issue 17: the
        construction ~4x cheaper)."""
        names = values.keys()
        if not names <= _DEFAULTS.keys() or not names >= _REQUIRED:
            raise TypeError(f"LedgerEntry fields: unknown {sorted(names - _DEFAULTS.keys())}, "
                            f"missing {sorted(_REQUIRED - names)}")
        entry = object.__new__(cls)
        state = entry.__dict__
        state.update(_DEFAULTS)
        state.update(values)
        entry.__post_init__()
        return entry

    @classmethod
    def of_all(cls, values: dict[str, Any]) -> LedgerEntry:
        """`of(values)` for a fresh dict holding every field in declaration order, which becomes
        the entry's own `__dict__` (the caller must not use it again): no copy, no defaults
        merged, no key checks beyond the order's (issue 17: the gateway's entry per request). Any
        other dict goes through `of`."""
        if tuple(values) != _FIELD_NAMES:
            return cls.of(values)
        entry = object.__new__(cls)
        object.__setattr__(entry, "__dict__", values)
        entry.__post_init__()
        return entry

    @classmethod
    def of_ordered(cls, values: dict[str, Any]) -> LedgerEntry:
        """`of_all(values)` for a caller whose dict holds every field in declaration order
        (`Accountant.entry`: `blank_fields()` filled in; `tests/test_accounting_fast.py` holds it
        to that): without `of_all`'s order check, the same checks in `__post_init__` (issue 17)."""
        entry = object.__new__(cls)
        object.__setattr__(entry, "__dict__", values)
        entry.__post_init__()
        return entry

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LedgerEntry:
        """The inverse of `to_dict`. Unknown keys are ignored and missing optional ones take their
        defaults, so entries spooled by another version still load."""
        known = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {k: v for k, v in data.items() if k in known}
        for name in TIME_FIELDS & values.keys():
            if values[name] is not None:
                values[name] = datetime.fromisoformat(values[name])
        for name in MONEY_FIELDS & values.keys():
            values[name] = parse_money(values[name])
        values["attempts"] = tuple(AttemptRecord.from_dict(a) for a in values.get("attempts") or ())
        return cls(**values)

    def to_json(self) -> str:
        """One line of JSON (no newlines inside), as the spool stores it."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"), default=_json_default)

    @classmethod
    def from_json(cls, text: str) -> LedgerEntry:
        """The inverse of `to_json`; raises ValueError on malformed input."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError(f"expected a JSON object, got {type(data).__name__}")
            return cls.from_dict(data)
        except (KeyError, TypeError, InvalidOperation) as exc:
            raise ValueError(f"malformed ledger entry: {exc!r}") from exc


def _defaults() -> tuple[dict[str, Any], frozenset[str]]:
    """`LedgerEntry.of`'s table: each field's default in declaration order (a required field's
    is None, always overwritten), and the required fields."""
    defaults: dict[str, Any] = {}
    required: set[str] = set()
    for f in dataclasses.fields(LedgerEntry):
        if f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"LedgerEntry.of cannot fill {f.name}'s default_factory")
        if f.default is dataclasses.MISSING:
            required.add(f.name)
        defaults[f.name] = None if f.default is dataclasses.MISSING else f.default
    return defaults, frozenset(required)


_DEFAULTS, _REQUIRED = _defaults()
_MONEY_VALUES = operator.attrgetter(*sorted(MONEY_FIELDS))
_FIELD_NAMES: tuple[str, ...] = tuple(_DEFAULTS)
_BLANK: dict[str, Any] = dict.fromkeys(_FIELD_NAMES)


def blank_fields() -> dict[str, Any]:
    """A fresh dict of every `LedgerEntry` field, None, in declaration order: for `of_ordered`
    once each field is set (issue 17: a copy and item stores cost ~14 k instructions less than a
    46-key dict display, which CPython builds in chunks merged one into another)."""
    return _BLANK.copy()


def as_utc(value: datetime, name: str) -> datetime:
    """`value` converted to UTC; naive datetimes are refused (their zone would be a guess)."""
    if value.__class__ is datetime and value.tzinfo is UTC:  # what astimezone(UTC) returns as is
        return value
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {value.isoformat()}")
    return value.astimezone(UTC)


def check_rating(rating: int | None) -> None:
    """Raise ValueError unless `rating` is None or an int from 1 to 5."""
    if rating is not None and (isinstance(rating, bool) or not isinstance(rating, int)
                               or not 1 <= rating <= 5):
        raise ValueError(f"user_rating must be an integer from 1 to 5, got {rating!r}")


def money_text(value: Decimal) -> str:
    """An exact, plain (non-scientific) decimal string: 0.0000001234, never 1.234E-7."""
    text = str(value)  # the same text as format(value, "f") unless it has an exponent, ~4x cheaper
    return format(value, "f") if "E" in text else text


def parse_money(value: object) -> Decimal | None:
    """A Decimal from its exact text (or a Decimal), None for None. Floats are refused: not exact."""
    if value is None or isinstance(value, Decimal):
        return value
    if isinstance(value, str):
        return Decimal(value)
    raise TypeError(f"money must be a decimal string, got {type(value).__name__}")


def _json_default(value: Any) -> Any:
    """Numbers of other types (numpy's, say) as plain ints and floats; anything else as text, so
    that spooling an entry never fails."""
    if hasattr(value, "__index__"):
        return int(value.__index__())
    if hasattr(value, "__float__"):
        return float(value)
    return str(value)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)
