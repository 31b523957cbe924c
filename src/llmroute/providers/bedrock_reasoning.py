"""Extended thinking in the Bedrock Converse dialect. Pure.

Claude models on Bedrock take Anthropic's `thinking` object in `additionalModelRequestFields`
(built by the Anthropic translation: budget, `max_tokens` raised above it); other models'
reasoning is their own, so `thinking` / `reasoning_effort` are not sent to them. Thinking blocks
are `reasoningContent` blocks: `{"reasoningText": {"text", "signature"}}`, a redacted one
`{"redactedContent": <bytes>}`, both ways; streamed, `delta.reasoningContent` carries `text`,
`signature` or `redactedContent`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

JSONDict = dict[str, Any]
#: The chat-body keys that ask for reasoning.
REASONING_KEYS = ("thinking", "reasoning_effort")


def takes_thinking(model: str) -> bool:
    """Whether a Bedrock model id (or inference profile) is a Claude model."""
    lowered = model.lower()
    return "anthropic." in lowered or "claude" in lowered


def without_reasoning(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """`body` without the reasoning keys (for models that do not take Anthropic's `thinking`)."""
    if not any(key in body for key in REASONING_KEYS):
        return body
    return {k: v for k, v in body.items() if k not in REASONING_KEYS}


def converse_block(block: Mapping[str, Any]) -> JSONDict | None:
    """The Converse block of an Anthropic thinking block (None: not one)."""
    if block.get("type") == "thinking":
        return {"reasoningContent": {"reasoningText": {
            "text": block.get("thinking") or "", "signature": block.get("signature") or ""}}}
    if block.get("type") == "redacted_thinking":
        return {"reasoningContent": {"redactedContent": block.get("data") or ""}}
    return None


def anthropic_block(reasoning: Mapping[str, Any]) -> JSONDict:
    """The Anthropic thinking block of a Converse `reasoningContent`."""
    if "redactedContent" in reasoning:
        return {"type": "redacted_thinking", "data": reasoning.get("redactedContent") or ""}
    text = reasoning.get("reasoningText")
    text = text if isinstance(text, Mapping) else {}
    return {"type": "thinking", "thinking": text.get("text") or "",
            "signature": text.get("signature") or ""}


def anthropic_delta(reasoning: Mapping[str, Any]) -> JSONDict | None:
    """The Anthropic delta of a streamed `reasoningContent` (None: nothing to say)."""
    if isinstance(reasoning.get("text"), str):
        return {"type": "thinking_delta", "thinking": reasoning["text"]}
    if isinstance(reasoning.get("signature"), str):
        return {"type": "signature_delta", "signature": reasoning["signature"]}
    return None
