"""Reasoning in the Responses API, both ways. Pure.

* request: `reasoning.effort` -> the chat body's `reasoning_effort` (llmroute.reasoning maps it
  for each upstream); `reasoning.summary` is checked and has no further effect.
* answer: each thinking block of the chat answer (`thinking_blocks`, else its
  `reasoning_content`) -> a `reasoning` output item before the message: the text as a
  `summary_text` part (Claude's thinking is already a summary), the block's signature as
  `encrypted_content` (a redacted block's data as `redacted:<data>`).
* input: a `reasoning` item with `encrypted_content` (one this gateway gave) goes back as a
  thinking block of the assistant turn that follows it, as Anthropic needs with tool use;
  without it (another server's reasoning) it is dropped, the answer standing alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .errors import InvalidRequestError

JSON = dict[str, Any]
REDACTED: Final = "redacted:"
SUMMARIES: Final = ("auto", "concise", "detailed")


def _bad(param: str, message: str) -> InvalidRequestError:
    return InvalidRequestError(f"Invalid value for '{param}': {message}", param=param)


def reasoning_effort(value: Any) -> str | None:
    """The chat `reasoning_effort` of a Responses `reasoning` object (a 400 naming the field)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _bad("reasoning", "expected an object.")
    effort = value.get("effort")
    if effort is not None and (not isinstance(effort, str) or not effort):
        raise _bad("reasoning.effort", "expected a string (none, minimal, low, medium, high).")
    summary = value.get("summary", value.get("generate_summary"))
    if summary is not None and summary not in SUMMARIES:
        raise _bad("reasoning.summary", f"expected one of {', '.join(SUMMARIES)}.")
    return effort


def reasoning_item(item_id: str, text: str, signature: str | None) -> JSON:
    """A `reasoning` output item."""
    summary = [{"type": "summary_text", "text": text}] if text else []
    item: JSON = {"type": "reasoning", "id": item_id, "summary": summary}
    if signature:
        item["encrypted_content"] = signature
    return item


def reasoning_items(message: Mapping[str, Any], rid: str) -> list[JSON]:
    """A chat answer's reasoning as output items."""
    blocks = message.get("thinking_blocks")
    if not isinstance(blocks, list) or not blocks:
        text = message.get("reasoning_content")
        return [reasoning_item(f"rs_{rid}_0", text, None)] if isinstance(text, str) and text else []
    items = []
    for i, block in enumerate(b for b in blocks if isinstance(b, Mapping)):
        if block.get("type") == "redacted_thinking":
            items.append(reasoning_item(f"rs_{rid}_{i}", "", REDACTED + str(block.get("data"))))
        else:
            items.append(reasoning_item(f"rs_{rid}_{i}", str(block.get("thinking") or ""),
                                        str(block.get("signature") or "") or None))
    return items


def thinking_block(item: Mapping[str, Any], param: str) -> JSON | None:
    """The thinking block an input `reasoning` item carries back (None: nothing to carry)."""
    secret = item.get("encrypted_content")
    if secret is None:
        return None
    if not isinstance(secret, str):
        raise _bad(f"{param}.encrypted_content", "expected a string.")
    if secret.startswith(REDACTED):
        return {"type": "redacted_thinking", "data": secret.removeprefix(REDACTED)}
    summary = item.get("summary") or []
    if not isinstance(summary, list):
        raise _bad(f"{param}.summary", "expected a list of summary_text parts.")
    text = "".join(str(p.get("text") or "") for p in summary if isinstance(p, Mapping))
    return {"type": "thinking", "thinking": text, "signature": secret}
