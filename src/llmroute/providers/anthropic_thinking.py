"""Extended thinking between the chat form and Anthropic's. Pure.

* request: the chat body's `thinking` / `reasoning_effort` (`llmroute.reasoning`) -> Anthropic's
  `thinking`, `max_tokens` raised above the budget when it is not (Anthropic counts thinking in
  it); an assistant message's `thinking_blocks` (LiteLLM's field: thinking blocks with their
  signature, redacted blocks) go first in its turn, as Anthropic needs them back with tool use.
* answer: thinking blocks -> the message's `reasoning_content` (their text) and
  `thinking_blocks` (each block with its signature, so the client can send it back);
  `completion_tokens_details.reasoning_tokens` is Anthropic's count when it gives one, else an
  estimate from the thinking text (≈4 characters per token, at most the output tokens:
  Anthropic bills thinking as output and does not count it apart).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmroute.errors import InvalidRequestError
from llmroute.providers.anthropic_errors import WireError
from llmroute.reasoning import anthropic_thinking, reasoning_of

JSONDict = dict[str, Any]
#: The block types that are thinking.
THINKING_TYPES = frozenset({"thinking", "redacted_thinking"})


def apply_thinking(request: JSONDict, body: Mapping[str, Any]) -> None:
    """Add `thinking` to an Anthropic request (and raise its `max_tokens` when needed); an
    effort with no budget is a WireError (this model cannot take it: fallbacks may)."""
    try:
        thinking, max_tokens = anthropic_thinking(reasoning_of(body), request["max_tokens"])
    except InvalidRequestError as exc:
        raise WireError(exc.message, exc.param) from None
    if thinking is not None:
        request["thinking"] = thinking
        request["max_tokens"] = max_tokens


def history_blocks(message: Mapping[str, Any], where: str) -> list[JSONDict]:
    """An assistant message's `thinking_blocks` as Anthropic blocks (thinking first)."""
    blocks = message.get("thinking_blocks")
    if not blocks:
        return []
    if not isinstance(blocks, list):
        raise WireError("`thinking_blocks` must be a list", f"{where}.thinking_blocks")
    out: list[JSONDict] = []
    for i, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind == "thinking":
            out.append({"type": "thinking", "thinking": str(block.get("thinking") or ""),
                        "signature": str(block.get("signature") or "")})
        elif kind == "redacted_thinking":
            out.append({"type": "redacted_thinking", "data": str(block.get("data") or "")})
        else:
            raise WireError(f"unsupported thinking block type {kind!r}",
                            f"{where}.thinking_blocks[{i}].type")
    return out


def chat_block(block: Mapping[str, Any]) -> JSONDict:
    """An answer's thinking block as a chat `thinking_blocks` entry."""
    if block.get("type") == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.get("data") or ""}
    return {"type": "thinking", "thinking": block.get("thinking") or "",
            "signature": block.get("signature") or ""}


def add_reasoning(message: JSONDict, blocks: list[JSONDict]) -> None:
    """`reasoning_content` and `thinking_blocks` on a chat message, when there was thinking."""
    if not blocks:
        return
    message["reasoning_content"] = "".join(b.get("thinking", "") for b in blocks)
    message["thinking_blocks"] = blocks


def estimate_tokens(text_chars: int) -> int:
    """Tokens of a thinking text of `text_chars` characters (≈4 characters per token)."""
    return -(-text_chars // 4)


def with_reasoning_tokens(usage: JSONDict, thinking_chars: int) -> JSONDict:
    """`usage` with `completion_tokens_details.reasoning_tokens` estimated from the thinking
    text, when the upstream gave no count and there was thinking."""
    if thinking_chars <= 0 or "completion_tokens_details" in usage:
        return usage
    tokens = min(estimate_tokens(thinking_chars), int(usage.get("completion_tokens") or 0))
    return {**usage, "completion_tokens_details": {"reasoning_tokens": tokens}}
