"""Extended thinking in the fake's Anthropic dialect: the checks Anthropic makes on `thinking`
(a budget of at least 1024, under `max_tokens`; with thinking on, the final assistant turn must
start with its thinking block when it made tool calls) and the thinking it answers with: the text
`thinking about: <the last user text>` and the signature `sig-fake<seq>`."""

from __future__ import annotations

from typing import Any

from llmroute.testing._wire import JsonObject, Reply, last_user_text
from llmroute.testing.behaviours import Error, bad_request


def thinking_on(body: JsonObject) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


def check_thinking(body: JsonObject) -> Error | None:
    """Anthropic's 400s about `thinking`, None when the request is fine."""
    thinking = body.get("thinking")
    if thinking is None:
        return None
    if not isinstance(thinking, dict) or thinking.get("type") not in (
            "enabled", "adaptive", "disabled"):
        return bad_request("thinking.type: Input should be 'enabled', 'adaptive' or 'disabled'")
    if thinking["type"] == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            return bad_request("thinking.enabled.budget_tokens: Input should be greater than or "
                               "equal to 1024")
        if budget >= body["max_tokens"]:
            return bad_request("`max_tokens` must be greater than `thinking.budget_tokens`")
    return _final_turn_starts_with_thinking(body) if thinking_on(body) else None


def _final_turn_starts_with_thinking(body: JsonObject) -> Error | None:
    turns = [t for t in body["messages"] if isinstance(t, dict) and t.get("role") == "assistant"]
    if not turns or not isinstance(turns[-1].get("content"), list):
        return None
    blocks: list[Any] = turns[-1]["content"]
    kinds = [b.get("type") for b in blocks if isinstance(b, dict)]
    if "tool_use" in kinds and kinds[0] not in ("thinking", "redacted_thinking"):
        return bad_request(
            f"messages.{body['messages'].index(turns[-1])}.content.0.type: Expected `thinking` or "
            f"`redacted_thinking`, but found `{kinds[0]}`. When `thinking` is enabled, a final "
            "`assistant` message must start with a thinking block.")
    if "tool_use" in kinds and not all(b.get("signature") for b in blocks
                                       if isinstance(b, dict) and b.get("type") == "thinking"):
        return bad_request("thinking blocks sent back need their `signature`")
    return None


def thinking_text(body: JsonObject) -> str:
    return "thinking about: " + last_user_text(body.get("messages"))[:60]


def thinking_block(reply: Reply, *, streaming: bool) -> JsonObject:
    return {"type": "thinking", "thinking": "" if streaming else reply.thinking or "",
            "signature": "" if streaming else f"sig-fake{reply.seq}"}


def thinking_deltas(reply: Reply) -> list[JsonObject]:
    text = reply.thinking or ""
    half = len(text) // 2
    return [{"type": "thinking_delta", "thinking": text[:half]},
            {"type": "thinking_delta", "thinking": text[half:]},
            {"type": "signature_delta", "signature": f"sig-fake{reply.seq}"}]
