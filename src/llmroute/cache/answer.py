"""A cached answer: the complete response (OpenAI `chat.completion` shape) with what the ledger
needs to account for serving it again (the model that answered, its tier, usage, what the call
cost, and the request that produced it), serialized as JSON bytes for either store."""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from ..types import Usage

JSON = dict[str, Any]
VERSION = 1


@dataclass(frozen=True)
class CachedAnswer:
    """One stored answer. `body` is never mutated: serving copies it (`fresh_body`)."""

    body: JSON
    model: str
    tier: str
    usage: Usage
    cost_usd: Decimal | None
    request_id: str
    stored_at: float

    def to_bytes(self) -> bytes:
        u = self.usage
        return orjson.dumps({
            "v": VERSION, "body": self.body, "model": self.model, "tier": self.tier,
            "usage": [u.input_tokens, u.output_tokens, u.cached_input_tokens, u.cache_write_tokens],
            "cost": None if self.cost_usd is None else str(self.cost_usd),
            "rid": self.request_id, "at": self.stored_at})

    @classmethod
    def from_bytes(cls, raw: bytes) -> CachedAnswer | None:
        """The answer, or None for bytes this version cannot read (another version's entry)."""
        try:
            data = orjson.loads(raw)
            if data.get("v") != VERSION:
                return None
            cost = data["cost"]
            return cls(data["body"], data["model"], data["tier"], Usage(*data["usage"]),
                       None if cost is None else Decimal(cost), data["rid"], float(data["at"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            return None

    def fresh_body(self) -> JSON:
        """A deep copy of the response to serve: its own usage says it cost nothing."""
        body: JSON = orjson.loads(orjson.dumps(self.body))
        if isinstance(body.get("usage"), dict):
            body["usage"]["cost"] = 0
        return body


def answer_of(body: JSON, *, model: str, tier: str, usage: Usage, cost_usd: Decimal | None,
              request_id: str) -> CachedAnswer:
    """What to store for an upstream's complete answer."""
    return CachedAnswer(body, model, tier, usage, cost_usd, request_id, time.time())


def complete(body: JSON) -> bool:
    """Whether an answer is whole: every choice ended with a finish reason."""
    choices = body.get("choices")
    return isinstance(choices, list) and bool(choices) and all(isinstance(c, dict) and c.get("finish_reason")
                                 for c in choices)
