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
from dataclasses import dataclass
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
    """A conversation's warm prompt cache: the model that served its last turn, when (epoch
    seconds, shared by replicas), and how many prompt tokens that model's cache now holds."""

    model: str
    at: float
    tokens: int

    def dumps(self) -> str:
        """A compact text form (for Redis)."""
        return f"{self.tokens}\t{self.at:.3f}\t{self.model}"

    @classmethod
    def loads(cls, text: str) -> Warm | None:
        """The inverse of `dumps`; None for anything malformed."""
        parts = text.split("\t", 2)
        if len(parts) != 3:
            return None
        try:
            return cls(parts[2], float(parts[1]), int(parts[0]))
        except ValueError:
            return None


#: How many models' caches are remembered per conversation (newest first).
KEEP_MODELS = 4
Warmth = tuple[Warm, ...]


def dumps_all(warmth: Warmth) -> str:
    """A conversation's warm models as text, one per line, newest first."""
    return "\n".join(w.dumps() for w in warmth)


def loads_all(text: str) -> Warmth:
    """The inverse of `dumps_all` (malformed lines are dropped)."""
    return tuple(w for line in text.split("\n") if (w := Warm.loads(line)) is not None)


def merged(newest: Warm | None, earlier: Warmth) -> Warmth:
    """`newest` first, then the earlier models' caches (each model once), at most KEEP_MODELS."""
    head = (newest,) if newest is not None else ()
    rest = tuple(w for w in earlier if newest is None or w.model != newest.model)
    return (head + rest)[:KEEP_MODELS]


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
          ladder: Sequence[str], expected: Usage, chosen_cached: int = 0) -> Weighed:
    """Stay on the warm model when its estimated cost with the prefix read from its cache is at
    most the router's choice's cost with the prefix uncached (written, where the choice has a
    cache-write price; read, for the `chosen_cached` tokens the choice's own cache still holds
    from an earlier turn), and it is at least as capable: its tier not below the router's `tier`
    (nor the choice's own)."""
    prefix = min(warm.tokens, expected.input_tokens)
    tokens = f"≈{prefix:,} cached tokens"
    wanted = max(_rank(tier, ladder), _rank(chosen.tier, ladder))
    if _rank(warm_spec.tier, ladder) < wanted:
        return Weighed(False, f"{warm.model}'s warm cache ({tokens}) not used: the router chose "
                              f"the stronger tier {ladder[wanted]!r}")
    theirs = min(chosen_cached, prefix)
    written = prefix - theirs if chosen.cache_write_per_m is not None else 0
    stay = warm_spec.cost(Usage(expected.input_tokens, expected.output_tokens, prefix))
    switch = chosen.cost(Usage(expected.input_tokens, expected.output_tokens, theirs, written))
    if stay is None or switch is None:
        return Weighed(False, f"{warm.model}'s warm cache ({tokens}) not weighed: unpriced model")
    versus = f"est {_usd(stay)} vs {_usd(switch)} on {chosen.name}"
    if stay <= switch:
        return Weighed(True, f"stayed on {warm.model}: warm prompt cache ({tokens}, {versus})",
                       stay, switch)
    return Weighed(False, f"left {warm.model}'s warm cache ({tokens}): staying costs more "
                          f"({versus})", stay, switch)


def _rank(tier: str | None, ladder: Sequence[str]) -> int:
    return ladder.index(tier) if tier in ladder else -1
