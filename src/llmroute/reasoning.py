"""Reasoning (extended thinking) asked for in a chat body: validated once, then put in each
provider's own form. Pure.

The chat body says it two ways (both reach the gateway from the client, from the Messages API's
`thinking` or from the Responses API's `reasoning.effort`):

* `reasoning_effort`: OpenAI's level. Any string passes the chat schema (new levels keep working
  for OpenAI-compatible upstreams, which get it as it came); a level outside `EFFORT_BUDGETS` is
  refused (400 naming `reasoning_effort`) only where it must be translated into a budget.
* `thinking`: Anthropic's object, as LiteLLM also takes it in chat requests:
  `{"type": "enabled", "budget_tokens": N}` (N >= 1024), `{"type": "adaptive"}` or
  `{"type": "disabled"}`; checked strictly (400 naming `thinking.…`). When both are given,
  `thinking` wins (it is the more precise).

Effort <-> budget, LiteLLM's defaults (`DEFAULT_REASONING_EFFORT_*_THINKING_BUDGET`), with
Anthropic's floor of 1024 for `minimal`: minimal 1024, low 1024, medium 2048, high 4096,
xhigh 8192; `none` disables thinking. A budget back to an effort (for OpenAI upstreams):
<= 1024 low, <= 2048 medium, more high.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from .errors import InvalidRequestError

JSONDict = dict[str, Any]
Mode = Literal["enabled", "adaptive", "disabled"]

#: OpenAI reasoning levels -> an Anthropic / Gemini thinking budget (tokens).
EFFORT_BUDGETS: Final[Mapping[str, int]] = {
    "minimal": 1024, "low": 1024, "medium": 2048, "high": 4096, "xhigh": 8192}
#: The smallest budget Anthropic accepts.
MIN_BUDGET: Final = 1024
MODES: Final = ("enabled", "adaptive", "disabled")


@dataclass(frozen=True, slots=True)
class Reasoning:
    """What the client asked: `mode`, the budget when enabled, the effort string as sent (when
    it came as `reasoning_effort`)."""

    mode: Mode
    budget_tokens: int | None = None
    effort: str | None = None


def reasoning_of(body: Mapping[str, Any]) -> Reasoning | None:
    """The reasoning a chat body asks for, None when it asks for none; a 400 naming the param
    when `thinking` is malformed or `reasoning_effort` is not a string."""
    thinking = body.get("thinking")
    if thinking is not None:
        return _thinking(thinking)
    effort = body.get("reasoning_effort")
    if effort is None:
        return None
    if not isinstance(effort, str) or not effort:
        raise InvalidRequestError("Invalid value for 'reasoning_effort': expected one of "
                                  f"none, {', '.join(EFFORT_BUDGETS)}.", param="reasoning_effort")
    if effort == "none":
        return Reasoning("disabled", effort=effort)
    return Reasoning("enabled", EFFORT_BUDGETS.get(effort), effort)


def _thinking(value: Any) -> Reasoning:
    if not isinstance(value, dict):
        raise InvalidRequestError("Invalid value for 'thinking': expected an object with 'type'.",
                                  param="thinking")
    mode = value.get("type")
    if mode not in MODES:
        raise InvalidRequestError("Invalid value for 'thinking.type': expected 'enabled', "
                                  "'adaptive' or 'disabled'.", param="thinking.type")
    if mode != "enabled":
        return Reasoning(mode)
    budget = value.get("budget_tokens")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < MIN_BUDGET:
        raise InvalidRequestError(
            f"Invalid value for 'thinking.budget_tokens': an integer of at least {MIN_BUDGET} "
            "is required when thinking is enabled.", param="thinking.budget_tokens")
    return Reasoning("enabled", budget)


def budget_of(reasoning: Reasoning) -> int:
    """The budget of an enabled reasoning; a 400 when its effort has no known budget."""
    if reasoning.budget_tokens is None:
        raise InvalidRequestError(
            f"Invalid value for 'reasoning_effort': {reasoning.effort!r} has no thinking budget "
            f"for this model; expected one of none, {', '.join(EFFORT_BUDGETS)}.",
            param="reasoning_effort")
    return reasoning.budget_tokens


def anthropic_thinking(reasoning: Reasoning | None, max_tokens: int) -> tuple[JSONDict | None, int]:
    """Anthropic's `thinking` object and the `max_tokens` to send: Anthropic counts thinking in
    `max_tokens` and needs it above the budget, so a `max_tokens` at or under the budget becomes
    budget + max_tokens (the client's limit was meant for the answer)."""
    if reasoning is None or reasoning.mode == "disabled":
        return None, max_tokens
    if reasoning.mode == "adaptive":
        return {"type": "adaptive"}, max_tokens
    budget = budget_of(reasoning)
    return ({"type": "enabled", "budget_tokens": budget},
            max_tokens if max_tokens > budget else budget + max_tokens)


def openai_effort(reasoning: Reasoning | None) -> str | None:
    """The `reasoning_effort` for an OpenAI-compatible upstream (None: send none; adaptive lets
    the model's default stand)."""
    if reasoning is None or reasoning.mode == "adaptive":
        return None
    if reasoning.effort is not None:
        return reasoning.effort
    if reasoning.mode == "disabled":
        return None
    budget = budget_of(reasoning)
    return "low" if budget <= 1024 else "medium" if budget <= 2048 else "high"


def gemini_thinking(reasoning: Reasoning | None) -> JSONDict | None:
    """Gemini's `generationConfig.thinkingConfig`: a budget (0 off, -1 dynamic), thoughts
    included in the answer so they come back as reasoning."""
    if reasoning is None:
        return None
    if reasoning.mode == "disabled":
        return {"thinkingBudget": 0}
    budget = -1 if reasoning.mode == "adaptive" else budget_of(reasoning)
    return {"thinkingBudget": budget, "includeThoughts": True}


#: Assistant-message keys that carry an earlier answer's reasoning (Anthropic's blocks, their
#: text); OpenAI-compatible upstreams do not take them back.
HISTORY_KEYS: Final = ("thinking_blocks", "reasoning_content")


def _carries_reasoning(messages: list[Any]) -> bool:
    """Whether an assistant message carries an earlier answer's reasoning. It runs on every
    request to an OpenAI-compatible upstream, so it is a plain loop: no generator frame."""
    for m in messages:  # noqa: SIM110  (a plain loop on the hot path, see the docstring)
        if isinstance(m, dict) and ("thinking_blocks" in m or "reasoning_content" in m):
            return True
    return False


def openai_body(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """The body for an OpenAI-compatible upstream: `thinking` as a `reasoning_effort`, earlier
    answers' reasoning left out (the same object when there is neither)."""
    found = body.get("messages")
    messages: list[Any] = found if isinstance(found, list) else []
    carried = _carries_reasoning(messages)
    if "thinking" not in body and not carried:
        return body
    out = {k: v for k, v in body.items() if k != "thinking"}
    if "thinking" in body:
        out.pop("reasoning_effort", None)
        effort = openai_effort(reasoning_of(body))
        if effort is not None:
            out["reasoning_effort"] = effort
    if carried:
        out["messages"] = [{k: v for k, v in m.items() if k not in HISTORY_KEYS}
                           if isinstance(m, dict) else m for m in messages]
    return out
