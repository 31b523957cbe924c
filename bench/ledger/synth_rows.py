"""A `Batch` as rows of `llmroute_requests`, encoded as the store encodes them (`llmroute.ledger.rows`).

`encode` is the fast path, column by column (numpy, then one list per column). `entry_at` builds the
same request the slow, obvious way, as a `LedgerEntry` (its cost from `ModelSpec.cost`), and
`check` compares `to_row(entry_at(...))` with the fast rows on a sample: any drift between this
generator and the store's own encoding (or the entry's fields) fails loudly instead of producing a
ledger the store would read differently.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import orjson
import synth_world as w
from synth_draw import Batch

from llmroute.catalog import ModelSpec
from llmroute.ledger import AttemptRecord, LedgerEntry
from llmroute.ledger.rows import DERIVED_COLUMNS, FIELDS, POSTGRES, RENAMED, SQLITE, Dialect, to_row
from llmroute.types import Usage

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Every entry field the generator writes (`shadow`, learning online's `explored` and `latent`, the
#: LLM router's `routing_cost_usd` and caching's fields but `cached_tokens` are left to their
#: column defaults: NULL, false, NULL, NULL, NULL — the entry's defaults too).
DEFAULTED = frozenset({"shadow", "explored", "latent", "routing_cost_usd", "cache_write_tokens",
                       "prompt_cache_saved_usd", "cache", "cache_saved_usd", "cached_from",
                       "cache_similarity"})
WRITTEN: tuple[str, ...] = tuple(f for f in FIELDS if f not in DEFAULTED)
#: The written fields' columns, then the columns derived from the entry (`rows.DERIVED_COLUMNS`).
COLUMNS: tuple[str, ...] = (*(RENAMED.get(f, f) for f in WRITTEN), *DERIVED_COLUMNS)
DIALECTS: dict[str, Dialect] = {"sqlite": SQLITE, "postgres": POSTGRES}
_CORPUS = " ".join(["the", "gateway", "routes", "each", "request", "to", "a", "model", "that", "can",
                    "answer", "it", "cheaply", "summarise", "this", "ticket", "and", "draft", "reply",
                    "explain", "why", "function", "returns", "none", "when", "list", "is", "empty"] * 400)


def cost_scale(model: w.Model) -> int:
    """The fewest decimals `ModelSpec.cost` gives this model's costs: Decimal division keeps the
    ideal exponent (the dividend's: its prices' most decimals) unless the value needs more."""
    prices = [model.input_per_m, model.output_per_m, model.cached_per_m or model.input_per_m]
    return max((-int(p.as_tuple().exponent) for p in prices if p is not None), default=0)


def nano_text(nano: int, scale: int) -> str:
    """Nano-dollars as the text `money_text` writes for the same Decimal cost: the exact amount
    with trailing zeros dropped down to `scale` decimals."""
    whole, fraction = divmod(nano, 10 ** w.NANO_DIGITS)
    digits = f"{fraction:0{w.NANO_DIGITS}d}"
    places = max(scale, len(digits.rstrip("0")))
    return f"{whole}.{digits[:places]}" if places else str(whole)


def attempt_dicts(model: int, error: int, fallback_model: int, fallback_kind: int,
                  fallback_latency: float, upstream: float) -> list[dict[str, Any]]:
    """The attempts of one request, as `AttemptRecord.to_dict` writes them (same key order)."""
    def one(m: int, kind: str | None, message: str, status: int | None, latency: float) -> dict[str, Any]:
        return {"model": w.MODELS[m].name, "error_kind": kind, "message": message, "status": status,
                "latency_s": latency, "skipped": False}

    if error < 0:
        last = [one(model, None, "", None, upstream)]
        if fallback_model < 0:
            return last
        kind, status, message = w.FALLBACK_FAILURES[fallback_kind]
        return [one(fallback_model, kind, message, status, fallback_latency), *last]
    failure = w.ERRORS[error]
    tries = [one(model, failure.attempt_kind, failure.message, failure.attempt_status, upstream)]
    if failure.attempts == 2:
        tries.insert(0, one(fallback_model, failure.attempt_kind, failure.message, failure.attempt_status,
                            fallback_latency))
    return tries[:failure.attempts]


def _lookup(table: Sequence[Any], index: np.ndarray) -> list[Any]:
    """table[i] for each index; -1 gives None."""
    return np.array([*table, None], dtype=object)[index].tolist()  # type: ignore[no-any-return]


def _optional(values: np.ndarray, present: np.ndarray) -> list[Any]:
    out: list[Any] = np.where(present, values.astype(object), np.array(None, dtype=object)).tolist()
    return out


def _times(us: np.ndarray, dialect: str) -> list[Any]:
    """Times (µs since the epoch; -1: none) as the dialect stores them."""
    if dialect == "sqlite":
        text = np.datetime_as_string(np.maximum(us, 0).astype("datetime64[us]"), unit="us")
        return [t + "Z" if u >= 0 else None for t, u in zip(text.tolist(), us.tolist(), strict=True)]
    return [EPOCH + timedelta(microseconds=u) if u >= 0 else None for u in us.tolist()]


def _money(nano: np.ndarray, model: np.ndarray, dialect: str) -> list[Any]:
    """Costs (nano-dollars; -1: none) of requests answered by `model`, as the dialect stores them."""
    scales = np.array([cost_scale(m) for m in w.MODELS])[model].tolist()
    texts = [nano_text(n, s) if n >= 0 else None for n, s in zip(nano.tolist(), scales, strict=True)]
    return texts if dialect == "sqlite" else [t if t is None else Decimal(t) for t in texts]


def _flags(values: np.ndarray, present: np.ndarray | None, dialect: str) -> list[Any]:
    cast = values.astype(np.int64) if dialect == "sqlite" else values.astype(bool)
    if present is None:
        flags: list[Any] = cast.tolist()
        return flags
    return _optional(cast, present)


def _attempts(b: Batch) -> tuple[list[str], list[float | None]]:
    """The attempts column (JSON text) and the upstream latency (their sum; None: no attempt)."""
    texts: list[str] = []
    sums: list[float | None] = []
    for row in zip(b.model.tolist(), b.error.tolist(), b.fallback_model.tolist(), b.fallback_kind.tolist(),
                   b.fallback_latency.tolist(), b.upstream.tolist(), strict=True):
        tries = attempt_dicts(*row)
        texts.append(orjson.dumps(tries).decode())
        sums.append(sum(t["latency_s"] for t in tries) or None)
    return texts, sums


def _people(b: Batch) -> tuple[list[str | None], list[str | None]]:
    """User names (`<key>-user-<n>`) and sessions (per user and half hour, on keys with sessions)."""
    keys = [k.name for k in w.KEYS]
    sessions = np.array([k.sessions for k in w.KEYS])[b.key].tolist()
    users: list[str | None] = []
    chats: list[str | None] = []
    for key, user, ts, session in zip(b.key.tolist(), b.user.tolist(), b.ts_us.tolist(), sessions,
                                      strict=True):
        name = f"{keys[key]}-user-{user}" if user >= 0 else None
        users.append(name)
        chats.append(f"sess-{user}-{ts // 1_800_000_000:x}" if session and name else None)
    return users, chats


def _texts(b: Batch) -> tuple[list[str | None], list[str | None]]:
    """Prompt and response text (about 4 characters a token, at most 4,000) on the text share."""
    prompts: list[str | None] = []
    answers: list[str | None] = []
    for keep, i, o, e in zip(b.text.tolist(), b.input_tokens.tolist(), b.output_tokens.tolist(),
                             b.error.tolist(), strict=True):
        start = i * 7 % 5000
        prompts.append("user: " + _CORPUS[start:start + min(4 * i, 4000)] if keep else None)
        answers.append(_CORPUS[start:start + min(4 * o, 4000)] if keep and e < 0 else None)
    return prompts, answers


def encode(b: Batch, dialect: str) -> list[tuple[Any, ...]]:
    """The batch's rows, values in `COLUMNS` order, encoded for `dialect` ("sqlite" or "postgres")."""
    ok = b.error < 0
    attempts, upstream = _attempts(b)
    users, sessions = _people(b)
    prompts, answers = _texts(b)
    reasons = [r for router in w.ROUTERS for r in w.REASONS[router]]
    offsets = np.cumsum([0] + [len(w.REASONS[r]) for r in w.ROUTERS])[:-1]
    columns: dict[str, list[Any]] = {
        "request_id": b.ids, "ts": _times(b.ts_us, dialect),
        "status": np.where(ok, "ok", "error").tolist(),
        "http_status": np.where(ok, 200, np.array([e.http_status for e in w.ERRORS])[b.error]).tolist(),
        "key_name": _lookup([k.name for k in w.KEYS], b.key), "user": users, "session": sessions,
        "policy": _lookup([p.name for p in w.POLICIES], b.policy), "router": _lookup(w.ROUTERS, b.router),
        "tier": _lookup(w.TIERS, b.tier), "confidence": b.confidence.tolist(),
        "reason": _lookup(reasons, offsets[b.router] + b.reason),
        "experiment_arm": _lookup([a.label for a in w.ARMS], b.arm),
        "model": _lookup([m.name for m in w.MODELS], np.where(ok, b.model, -1)), "attempts": attempts,
        "error_type": _lookup([e.error_type for e in w.ERRORS], b.error),
        "error_code": _lookup([e.code for e in w.ERRORS], b.error),
        "stream": _flags(b.stream, None, dialect), "latency_s": b.latency.tolist(),
        "ttft_s": _optional(b.ttft, b.ttft >= 0), "upstream_latency_s": upstream,
        "input_tokens": _optional(b.input_tokens, ok), "output_tokens": _optional(b.output_tokens, ok),
        "cached_tokens": _optional(b.cached_tokens, ok),
        "usage_estimated": _flags(b.estimated, None, dialect),
        "cost_usd": _money(b.cost_nano, b.model, dialect),
        "baseline_cost_usd": _money(b.baseline_nano, np.full(len(b), w.MODEL_INDEX[w.BASELINE]), dialect),
        "baseline_model": [w.BASELINE] * len(b), "prompt_text": prompts, "response_text": answers,
        "user_rating": _optional(b.rating, b.rating > 0),
        "task_success": _flags(b.success, b.success >= 0, dialect),
        "feedback_comment": _lookup(w.COMMENTS, b.comment), "feedback_ts": _times(b.feedback_us, dialect),
        # `LedgerEntry.unpriced`: answered without a cost (a failure here has no usage, no router
        # call); `.fallback`: answered after another model's failed try
        "unpriced": _flags(ok & (b.cost_nano < 0), None, dialect),
        "fallback": _flags(ok & (b.fallback_model >= 0) & (b.fallback_model != b.model), None, dialect),
    }
    return list(zip(*(columns[f] for f in (*WRITTEN, *DERIVED_COLUMNS)), strict=True))


def _spec(m: int) -> ModelSpec:
    model = w.MODELS[m]
    return ModelSpec(model.name, model.name.split("/")[0], model.input_per_m, model.output_per_m,
                     model.cached_per_m)


def entry_at(b: Batch, i: int) -> LedgerEntry:
    """Request i of the batch as a `LedgerEntry`, built one field at a time (the reference)."""
    error, model = int(b.error[i]), int(b.model[i])
    failure = w.ERRORS[error] if error >= 0 else None
    tries = attempt_dicts(model, error, int(b.fallback_model[i]), int(b.fallback_kind[i]),
                          float(b.fallback_latency[i]), float(b.upstream[i]))
    usage = None if failure else Usage(int(b.input_tokens[i]), int(b.output_tokens[i]),
                                       int(b.cached_tokens[i]))
    key, user = w.KEYS[int(b.key[i])], int(b.user[i])
    name = f"{key.name}-user-{user}" if user >= 0 else None
    ts = EPOCH + timedelta(microseconds=int(b.ts_us[i]))
    session = f"sess-{user}-{int(b.ts_us[i]) // 1_800_000_000:x}" if key.sessions and name else None
    router = w.ROUTERS[int(b.router[i])]
    feedback = int(b.feedback_us[i])
    prompt, answer = _texts(_one(b, i))
    return LedgerEntry(
        request_id=b.ids[i], ts=ts, status="error" if failure else "ok",
        http_status=failure.http_status if failure else 200, key_name=key.name, user=name,
        session=session, policy=w.POLICIES[int(b.policy[i])].name, router=router,
        tier=w.TIERS[int(b.tier[i])], confidence=float(b.confidence[i]),
        reason=w.REASONS[router][int(b.reason[i])],
        experiment_arm=w.ARMS[int(b.arm[i])].label if b.arm[i] >= 0 else None,
        model=None if failure else w.MODELS[model].name,
        attempts=tuple(AttemptRecord(**t) for t in tries),
        error_type=failure.error_type if failure else None, error_code=failure.code if failure else None,
        stream=bool(b.stream[i]), latency_s=float(b.latency[i]),
        ttft_s=float(b.ttft[i]) if b.ttft[i] >= 0 else None,
        upstream_latency_s=sum(t["latency_s"] for t in tries) or None,
        input_tokens=usage.input_tokens if usage else None,
        output_tokens=usage.output_tokens if usage else None,
        cached_tokens=usage.cached_input_tokens if usage else None,
        usage_estimated=bool(b.estimated[i]),
        cost_usd=_spec(model).cost(usage) if usage else None,
        baseline_cost_usd=_spec(w.MODEL_INDEX[w.BASELINE]).cost(usage) if usage else None,
        baseline_model=w.BASELINE, prompt_text=prompt[0], response_text=answer[0],
        user_rating=int(b.rating[i]) or None,
        task_success=bool(b.success[i]) if b.success[i] >= 0 else None,
        feedback_comment=w.COMMENTS[int(b.comment[i])] if b.comment[i] >= 0 else None,
        feedback_ts=EPOCH + timedelta(microseconds=feedback) if feedback >= 0 else None)


def _one(b: Batch, i: int) -> Batch:
    """Request i alone, as a batch of one."""
    return Batch(**{name: value[i:i + 1] for name, value in vars(b).items()})


def check(b: Batch, rows: Sequence[tuple[Any, ...]], dialect: str, sample: Sequence[int]) -> None:
    """Raise ValueError unless each sampled row equals the store's own encoding of `entry_at`."""
    written = [FIELDS.index(f) for f in WRITTEN] + [len(FIELDS) + k for k in range(len(DERIVED_COLUMNS))]
    for i in sample:
        expected = to_row(entry_at(b, i), DIALECTS[dialect])
        for field, position, got in zip((*WRITTEN, *DERIVED_COLUMNS), written, rows[i], strict=True):
            want = expected[position]
            if want != got or type(want) is not type(got):
                raise ValueError(f"row {i} ({b.ids[i]}): {field} is {got!r}, the store would write {want!r}")


def sample(b: Batch, count: int) -> list[int]:
    """Rows worth checking: evenly spread ones plus the first of each rare kind."""
    n = len(b)
    picks = set(range(0, n, max(1, n // count)))
    for mask in (b.error >= 0, b.fallback_model >= 0, b.rating > 0, b.success >= 0, b.comment >= 0,
                 b.text, b.estimated, b.arm >= 0, b.cost_nano < 0, b.stream):
        hits = np.flatnonzero(mask)
        picks.update(hits[:3].tolist())
    for kind in range(len(w.ERRORS)):
        picks.update(np.flatnonzero(b.error == kind)[:2].tolist())
    return sorted(picks)
