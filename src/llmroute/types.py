"""Typed data that crosses module boundaries: the routing request, token usage, and the decision."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .frozen import quick_init

#: Tokens added per message by chat templates (role markers), as OpenAI documents (≈3–4).
MESSAGE_OVERHEAD_TOKENS = 4
#: A high-detail image tile budget: the most OpenAI charges for a 1024×1024 image.
IMAGE_TOKENS = 765
CHARS_PER_TOKEN = 4
_IMAGE_PARTS = frozenset({"image_url", "image", "input_image"})
_ATTACHMENT_PARTS = frozenset({"file", "input_audio", "input_file", "document"})


def estimate_tokens(chars: int) -> int:
    """A fast token estimate from a character count (≈4 characters per token, rounded up)."""
    return -(-chars // CHARS_PER_TOKEN)


@quick_init
@dataclass(frozen=True)
class Usage:
    """Token usage of one call. `cached_input_tokens` is the part of `input_tokens` read from the
    provider's prompt cache, `cache_write_tokens` the part written to it (Anthropic's
    `cache_creation_input_tokens`); both are counted in `input_tokens`, as OpenAI counts them."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    #: The part of `cache_write_tokens` written to Anthropic's 1-hour cache (priced apart).
    cache_write_1h_tokens: int = 0


_NOTHING: frozenset[str] = frozenset()


@quick_init  # one a message of each request
@dataclass(frozen=True)
class _Content:
    text: str
    images: int
    attachments: int


def _content_of(content: Any) -> _Content:
    """Text, image count and attachment count of one message's `content` (string or parts)."""
    if content is None:
        return _Content("", 0, 0)
    if isinstance(content, str):
        return _Content(content, 0, 0)
    texts: list[str] = []
    images = attachments = 0
    if isinstance(content, Sequence):
        for part in content:
            kind = part.get("type") if isinstance(part, Mapping) else None
            if kind == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif kind in _IMAGE_PARTS:
                images += 1
            elif kind in _ATTACHMENT_PARTS:
                attachments += 1
    return _Content("\n".join(texts), images, attachments)


@quick_init  # one a request (the generated __init__: one `object.__setattr__` a field, 15 fields)
@dataclass(frozen=True)
class RouteRequest:
    """What a router sees of a request: its messages plus features computed once, up front.

    Build it with `RouteRequest.from_messages(...)` or `RouteRequest.from_prompt(...)`.
    """

    messages: tuple[Mapping[str, Any], ...]
    user_text: str
    last_user_text: str
    input_tokens: int
    max_output_tokens: int | None = None
    images: int = 0
    attachments: int = 0
    has_tools: bool = False
    requires: frozenset[str] = frozenset()
    allowed_models: tuple[str, ...] = ()
    excluded_models: tuple[str, ...] = ()
    key_models: tuple[str, ...] = ()
    user: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_prompt(cls, prompt: str, **options: Any) -> RouteRequest:
        """A request holding one user message."""
        return cls.from_messages([{"role": "user", "content": prompt}], **options)

    @classmethod
    def from_messages(
        cls,
        messages: Iterable[Mapping[str, Any]],
        *,
        max_output_tokens: int | None = None,
        tools: Sequence[Any] | None = None,
        response_format: Mapping[str, Any] | None = None,
        allowed_models: Sequence[str] = (),
        excluded_models: Sequence[str] = (),
        key_models: Sequence[str] = (),
        user: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> RouteRequest:
        """Parse OpenAI-style messages once and precompute everything routers and constraints use."""
        msgs = tuple(messages)
        user_parts: list[str] = []
        last_user = ""
        chars = images = attachments = 0
        for message in msgs:
            raw = message.get("content")
            if type(raw) is str:  # the common case: `_content_of` would give (raw, 0, 0)
                text = raw
            else:
                content = _content_of(raw)
                text = content.text
                images += content.images
                attachments += content.attachments
            chars += len(text)
            if message.get("role") == "user":
                user_parts.append(text)
                last_user = text
            if message.get("tool_calls"):
                chars += len(json.dumps(message["tool_calls"]))
        tokens = estimate_tokens(chars) + MESSAGE_OVERHEAD_TOKENS * len(msgs) + 3
        tokens += IMAGE_TOKENS * images
        if tools:
            tokens += estimate_tokens(len(json.dumps(list(tools))))
        requires: set[str] | frozenset[str] = _NOTHING
        json_schema = response_format is not None and response_format.get("type") == "json_schema"
        if tools or images or json_schema:
            requires = set()
            if tools:
                requires.add("tools")
            if images:
                requires.add("vision")
            if json_schema:
                requires.add("json")
        return cls(
            messages=msgs,
            user_text="\n".join(user_parts),
            last_user_text=last_user,
            input_tokens=tokens,
            max_output_tokens=max_output_tokens,
            images=images,
            attachments=attachments,
            has_tools=bool(tools),
            requires=frozenset(requires),
            allowed_models=tuple(allowed_models),
            excluded_models=tuple(excluded_models),
            key_models=tuple(key_models),
            user=user,
            metadata=dict(metadata or {}),
        )


@quick_init  # one a routing decision (the generated __init__: ~30 k instructions)
@dataclass(frozen=True)
class Decision:
    """The routing decision: which tier, which models in order, who decided, how sure, and why."""

    policy: str
    router: str
    tier: str
    chain: tuple[str, ...]
    confidence: float
    reason: str
    input_tokens: int
    #: The chain's first model's and the baseline's cost of the expected usage; None when
    #: unpriced, or not estimated (`Engine.decide(..., estimate=False)`).
    estimated_cost_usd: Decimal | None
    baseline_model: str | None = None
    baseline_cost_usd: Decimal | None = None
    scores: Mapping[str, float] = field(default_factory=dict)
    excluded: Mapping[str, str] = field(default_factory=dict)
    #: Learning online: routed by exploration; the prompt's encoded latent (None when off).
    explored: bool = False
    latent: str | None = None

    @property
    def model(self) -> str:
        """The primary model: the first in the chain."""
        return self.chain[0]

    @property
    def estimated_savings_usd(self) -> Decimal | None:
        """Baseline cost minus this decision's cost, when both are priced."""
        if self.estimated_cost_usd is None or self.baseline_cost_usd is None:
            return None
        return self.baseline_cost_usd - self.estimated_cost_usd

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (costs as strings of exact decimals, or null when unpriced)."""

        def money(value: Decimal | None) -> str | None:
            return None if value is None else format(value.normalize(), "f")

        return {
            "policy": self.policy,
            "router": self.router,
            "tier": self.tier,
            "model": self.model,
            "chain": list(self.chain),
            "confidence": round(self.confidence, 4),
            "reason": self.reason,
            "scores": dict(self.scores),
            "input_tokens": self.input_tokens,
            "estimated_cost_usd": money(self.estimated_cost_usd),
            "baseline_model": self.baseline_model,
            "baseline_cost_usd": money(self.baseline_cost_usd),
            "estimated_savings_usd": money(self.estimated_savings_usd),
            "excluded": dict(self.excluded),
            "explored": self.explored,
        }
