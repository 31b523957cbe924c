"""Cache-aware routing, the pure part: who a conversation is (a client's session id, else a hash of
the conversation so far, scoped by the gateway key), what its warm prompt cache holds (`Warm`), and
whether to stay on the warm model or take the router's choice (`weigh`). No I/O, no clock.

Identity by prefix hash: after an answer the gateway records hash(request messages + the answer)
-> model; the next turn of the same conversation carries those messages and the answer (then a new
user turn), so hash(messages up to its last assistant message) finds it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import orjson

from ..catalog import ModelSpec
from ..chat import SESSION_KEY
from ..types import Usage

#: Body `metadata` keys naming a conversation, first found wins.
SESSION_FIELDS = ("session_id", "conversation_id")
_SEP = b"\x1f"
_END = b"\x1e"


@dataclass(frozen=True)
class Warm:
    """A model in a conversation: when it last served (epoch seconds, shared by replicas), how
    many prompt tokens its cache then held (0: none), and for how many calls of the conversation
    the router chose it (`picks`, whether or not it served them)."""

    model: str
    at: float
    tokens: int
    picks: int = 0

    def dumps(self) -> str:
        """A compact text form (for Redis)."""
        return f"{self.tokens}\t{self.at:.3f}\t{self.picks}\t{self.model}"

    @classmethod
    def loads(cls, text: str) -> Warm | None:
        """The inverse of `dumps` (and of the earlier three-field form); None for anything
        malformed."""
        parts = text.split("\t", 3)
        try:
            if len(parts) == 4 and parts[2].isdigit():
                return cls(parts[3], float(parts[1]), int(parts[0]), int(parts[2]))
            if len(parts) >= 3:
                return cls("\t".join(parts[2:]), float(parts[1]), int(parts[0]))
        except ValueError:
            return None
        return None


#: How many models are remembered per conversation (newest first).
KEEP_MODELS = 4
Warmth = tuple[Warm, ...]


def dumps_all(warmth: Warmth) -> str:
    """A conversation's models as text, one per line, newest first."""
    return "\n".join(w.dumps() for w in warmth)


def loads_all(text: str) -> Warmth:
    """The inverse of `dumps_all` (malformed lines are dropped)."""
    return tuple(w for line in text.split("\n") if (w := Warm.loads(line)) is not None)


def merged(newest: Warm | None, earlier: Warmth) -> Warmth:
    """`newest` first (keeping the router's picks counted for it before), then the earlier
    models (each model once), at most KEEP_MODELS."""
    if newest is None:
        return earlier[:KEEP_MODELS]
    before = next((w.picks for w in earlier if w.model == newest.model), 0)
    head = replace(newest, picks=max(newest.picks, before))
    return (head, *(w for w in earlier if w.model != newest.model))[:KEEP_MODELS]


def picked(warmth: Warmth, model: str, at: float) -> Warmth:
    """`warmth` with one more router pick of `model` (a model not there yet: added last, with
    nothing cached; one with nothing cached is dated `at`), at most KEEP_MODELS."""
    if any(w.model == model for w in warmth):
        return tuple(w if w.model != model else replace(w, picks=w.picks + 1, at=w.at if w.tokens
                                                        else at) for w in warmth)
    return (*warmth, Warm(model, at, 0, 1))[:KEEP_MODELS]


def session_of(metadata: Mapping[str, str], body: Mapping[str, Any]) -> str | None:
    """The conversation id the client gave: the session header, else `metadata.session_id` /
    `metadata.conversation_id` of the body."""
    given = metadata.get(SESSION_KEY)
    if given:
        return given
    meta = body.get("metadata")
    if isinstance(meta, Mapping):
        for name in SESSION_FIELDS:
            value = meta.get(name)
            if isinstance(value, str) and value:
                return value
    return None


def _digest(scope: str | None, kind: bytes) -> hashlib.blake2b:
    h = hashlib.blake2b(digest_size=16)
    h.update((scope or "").encode("utf-8", "surrogatepass") + _SEP + kind + _SEP)
    return h


def session_key(scope: str | None, session: str) -> str:
    """The store key of a client-named conversation, scoped by the gateway key."""
    h = _digest(scope, b"s")
    h.update(session.encode("utf-8", "surrogatepass"))
    return "s" + h.hexdigest()


def _text(content: Any) -> bytes:
    """A message's content, canonical: a string as is; parts' texts joined (other parts as JSON)."""
    if content is None:
        return b""
    if isinstance(content, str):
        return content.encode("utf-8", "surrogatepass")
    if isinstance(content, Sequence):
        out = []
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "text":
                out.append(str(part.get("text", "")).encode("utf-8", "surrogatepass"))
            else:
                out.append(orjson.dumps(part, option=orjson.OPT_SORT_KEYS))
        return b"\n".join(out)
    return orjson.dumps(content, option=orjson.OPT_SORT_KEYS)


def _calls(message: Mapping[str, Any]) -> bytes:
    calls = message.get("tool_calls") or ()
    ids = [str(c.get("id", "")) for c in calls if isinstance(c, Mapping)]
    return ",".join(ids).encode()


def _feed(h: hashlib.blake2b, messages: Iterable[Mapping[str, Any]]) -> None:
    for m in messages:
        h.update(str(m.get("role", "")).encode() + _SEP + _text(m.get("content")) + _SEP
                 + _calls(m) + _SEP + str(m.get("tool_call_id") or "").encode() + _END)


def _last_answer(messages: Sequence[Mapping[str, Any]]) -> int | None:
    return next((i for i in range(len(messages) - 1, -1, -1)
                 if messages[i].get("role") == "assistant"), None)


def prefix_key(scope: str | None, messages: Sequence[Mapping[str, Any]]) -> str | None:
    """The store key to look up: the hash of the messages up to the last assistant message
    (None when there is none: a first turn has no warm prefix)."""
    last = _last_answer(messages)
    if last is None:
        return None
    h = _digest(scope, b"p")
    _feed(h, messages[: last + 1])
    return "p" + h.hexdigest()


def answered_keys(scope: str | None, messages: Sequence[Mapping[str, Any]],
                  answer: Mapping[str, Any]) -> tuple[str | None, str]:
    """In one pass over the conversation: its `prefix_key` (where the earlier turns' warm models
    are), and the key to record after `answer` (an assistant message): the hash of the request's
    messages and the answer, which the next turn's `prefix_key` reproduces."""
    last = _last_answer(messages)
    h = _digest(scope, b"p")
    earlier = None
    if last is not None:
        _feed(h, messages[: last + 1])
        earlier = "p" + h.hexdigest()
    start = 0 if last is None else last + 1
    _feed(h, [*messages[start:], {**answer, "role": "assistant"}])
    return earlier, "p" + h.hexdigest()


def answered_key(scope: str | None, messages: Sequence[Mapping[str, Any]],
                 answer: Mapping[str, Any]) -> str:
    """The key to record after `answer` (see `answered_keys`)."""
    return answered_keys(scope, messages, answer)[1]


def cached_prefix(spec: ModelSpec | None, usage: Usage) -> int:
    """How many prompt tokens the model's cache holds after a call with `usage`: what the call
    read or wrote where the provider caches only marked prefixes (Anthropic: `provider`
    anthropic, or a cache-write price), else the whole prompt (OpenAI-style automatic caching)."""
    explicit = spec is not None and (spec.provider == "anthropic"
                                     or spec.cache_write_per_m is not None)
    if explicit:
        return usage.cached_input_tokens + usage.cache_write_tokens
    return usage.input_tokens


@dataclass(frozen=True)
class Weighed:
    """`weigh`'s answer: stay on the warm model or not, and the reason's words."""

    stay: bool
    note: str
    stay_usd: Decimal | None = None
    switch_usd: Decimal | None = None


def _usd(value: Decimal) -> str:
    return f"${value:.4f}" if value >= Decimal("0.0001") else f"${value:.6f}"


def weigh(warm: Warm, warm_spec: ModelSpec, chosen: ModelSpec, tier: str,
          ladder: Sequence[str], expected: Usage, chosen_cached: int = 0,
          horizon: int = 1) -> Weighed:
    """Stay on the warm model when its estimated cost over the next `horizon` calls (this one
    included), the prefix read from its cache each time, is at most the cost of switching to the
    router's choice once (the prefix uncached: written, where the choice has a cache-write price;
    read, for the `chosen_cached` tokens the choice's own cache still holds from an earlier turn)
    and then reading the choice's own cache for the `horizon - 1` calls after; and it is at least
    as capable: its tier not below the router's `tier` (nor the choice's own). `horizon` 1 is the
    one-call comparison."""
    prefix = min(warm.tokens, expected.input_tokens)
    tokens = f"≈{prefix:,} cached tokens"
    wanted = max(_rank(tier, ladder), _rank(chosen.tier, ladder))
    if _rank(warm_spec.tier, ladder) < wanted:
        return Weighed(False, f"{warm.model}'s warm cache ({tokens}) not used: the router chose "
                              f"the stronger tier {ladder[wanted]!r}")
    stay, switch = _horizon_costs(warm_spec, chosen, expected, prefix,
                                  min(chosen_cached, prefix), max(1, horizon))
    if stay is None or switch is None:
        return Weighed(False, f"{warm.model}'s warm cache ({tokens}) not weighed: unpriced model")
    over = f" over {horizon} calls" if horizon > 1 else ""
    versus = f"est {_usd(stay)} vs {_usd(switch)} on {chosen.name}{over}"
    if stay <= switch:
        return Weighed(True, f"stayed on {warm.model}: warm prompt cache ({tokens}, {versus})",
                       stay, switch)
    return Weighed(False, f"left {warm.model}'s warm cache ({tokens}): staying costs more "
                          f"({versus})", stay, switch)


def _horizon_costs(warm_spec: ModelSpec, chosen: ModelSpec, expected: Usage, prefix: int,
                   theirs: int, horizon: int) -> tuple[Decimal | None, Decimal | None]:
    """(stay, switch) over `horizon` calls of `expected` size: every call on the warm model with
    `prefix` read from its cache; or one call on the choice with `theirs` read and the rest of
    the prefix written (where it has a write price), then `horizon - 1` reading the prefix."""
    inp, out = expected.input_tokens, expected.output_tokens
    written = prefix - theirs if chosen.cache_write_per_m is not None else 0
    stay_one = warm_spec.cost(Usage(inp, out, prefix))
    first = chosen.cost(Usage(inp, out, theirs, written))
    later = chosen.cost(Usage(inp, out, prefix)) if horizon > 1 else Decimal(0)
    if stay_one is None or first is None or later is None:
        return None, None
    return stay_one * horizon, first + later * (horizon - 1)


def _rank(tier: str | None, ladder: Sequence[str]) -> int:
    return ladder.index(tier) if tier in ladder else -1
