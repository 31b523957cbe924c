"""The pieces of an answer the gateway relays: what a stream's relay keeps (`StreamMeta`: its text,
its last chunk, the usage chunk it sends when the upstream sent none), the OpenAI `usage` object,
an answer's text, and closing an upstream stream."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .chat import ChatRequest
from .control.limits import Ticket
from .outcome import Outcome, Principal
from .types import Usage

JSON = dict[str, Any]


@dataclass
class StreamMeta:
    """What the relay of a stream needs for its ledger entry and its limits."""

    req: ChatRequest
    principal: Principal
    started: float
    ticket: Ticket
    text: list[str] = field(default_factory=list)
    last: Mapping[str, Any] = field(default_factory=dict)
    #: The usage the upstream reported (its usage chunk), None until it does.
    usage: Usage | None = None
    #: Tell the follower and observer after the stream's last frame (`Gateway.stream`'s `defer`).
    defer: bool = False

    def collect(self, chunk: Mapping[str, Any]) -> None:
        """Keep the streamed answer's text (to count its tokens, and for the ledger)."""
        self.last = chunk
        for choice in chunk.get("choices") or ():
            content = (choice.get("delta") or {}).get("content")
            if isinstance(content, str):
                self.text.append(content)

    def usage_chunk(self, outcome: Outcome) -> JSON:
        """The usage chunk the client asked for when the upstream sent none (counted here)."""
        usage: JSON = {**usage_dict(outcome.usage or Usage(0, 0)), "estimated": True}
        if outcome.cost_usd is not None:
            usage["cost"] = float(outcome.cost_usd)
        return {"id": self.last.get("id", outcome.request_id), "object": "chat.completion.chunk",
                "created": self.last.get("created", int(time.time())), "model": outcome.model,
                "choices": [], "usage": usage}


def usage_dict(usage: Usage) -> JSON:
    """An OpenAI `usage` object."""
    return {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
            "total_tokens": usage.input_tokens + usage.output_tokens}


def answer_text(response: Mapping[str, Any]) -> str | None:
    """The first choice's message text (None when there is none)."""
    choices = response.get("choices") or []
    if not choices or not isinstance(choices[0], Mapping):
        return None
    content = (choices[0].get("message") or {}).get("content")
    return content if isinstance(content, str) else None


def answer_message(response: Mapping[str, Any]) -> Mapping[str, Any]:
    """The first choice's message (empty when there is none)."""
    choices = response.get("choices") or []
    message = choices[0].get("message") if choices and isinstance(choices[0], Mapping) else None
    return message if isinstance(message, Mapping) else {}


async def close_stream(chunks: AsyncIterator[JSON]) -> None:
    """Close an upstream stream (its connection goes back to the pool, or is dropped)."""
    closer = getattr(chunks, "aclose", None)
    if closer is not None:
        await closer()
