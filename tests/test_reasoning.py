"""llmroute.reasoning: the chat body's reasoning, checked, and its form for each provider (the
effort <-> budget table is LiteLLM's defaults); the Messages API's stream and message built from
another upstream's `reasoning_content` (no signature)."""

from __future__ import annotations

from typing import Any

import pytest

from llmroute.errors import InvalidRequestError
from llmroute.messages_reply import MessageStream, to_message
from llmroute.reasoning import (
    Reasoning,
    anthropic_thinking,
    gemini_thinking,
    openai_body,
    openai_effort,
    reasoning_of,
)


@pytest.mark.parametrize(("effort", "budget"), [
    ("minimal", 1024), ("low", 1024), ("medium", 2048), ("high", 4096), ("xhigh", 8192)])
def test_effort_to_budget(effort: str, budget: int) -> None:
    reasoning = reasoning_of({"reasoning_effort": effort})
    assert reasoning == Reasoning("enabled", budget, effort)
    assert anthropic_thinking(reasoning, 64_000) == (
        {"type": "enabled", "budget_tokens": budget}, 64_000)
    assert gemini_thinking(reasoning) == {"thinkingBudget": budget, "includeThoughts": True}
    assert openai_effort(reasoning) == effort  # passed as it came


@pytest.mark.parametrize(("budget", "effort"), [
    (1024, "low"), (1500, "medium"), (2048, "medium"), (2049, "high"), (32_000, "high")])
def test_budget_to_effort(budget: int, effort: str) -> None:
    reasoning = reasoning_of({"thinking": {"type": "enabled", "budget_tokens": budget}})
    assert openai_effort(reasoning) == effort


def test_max_tokens_is_raised_over_the_budget() -> None:
    reasoning = Reasoning("enabled", 4096)
    assert anthropic_thinking(reasoning, 100)[1] == 4196
    assert anthropic_thinking(reasoning, 4096)[1] == 8192
    assert anthropic_thinking(reasoning, 4097)[1] == 4097


def test_off_adaptive_and_absent() -> None:
    off = reasoning_of({"reasoning_effort": "none"})
    assert anthropic_thinking(off, 10) == (None, 10)
    assert gemini_thinking(off) == {"thinkingBudget": 0}
    assert openai_effort(off) == "none"
    disabled = reasoning_of({"thinking": {"type": "disabled"}})
    assert openai_effort(disabled) is None and anthropic_thinking(disabled, 10) == (None, 10)
    adaptive = reasoning_of({"thinking": {"type": "adaptive"}})
    assert anthropic_thinking(adaptive, 10) == ({"type": "adaptive"}, 10)
    assert gemini_thinking(adaptive) == {"thinkingBudget": -1, "includeThoughts": True}
    assert openai_effort(adaptive) is None
    assert reasoning_of({}) is None and gemini_thinking(None) is None


def test_thinking_wins_over_an_effort() -> None:
    body = {"reasoning_effort": "high", "thinking": {"type": "enabled", "budget_tokens": 1024}}
    assert reasoning_of(body) == Reasoning("enabled", 1024)
    assert openai_body(body) == {"reasoning_effort": "low"}


@pytest.mark.parametrize(("body", "param"), [
    ({"thinking": "on"}, "thinking"),
    ({"thinking": {"type": "sometimes"}}, "thinking.type"),
    ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
    ({"thinking": {"type": "enabled", "budget_tokens": 1023}}, "thinking.budget_tokens"),
    ({"thinking": {"type": "enabled", "budget_tokens": True}}, "thinking.budget_tokens"),
    ({"reasoning_effort": 3}, "reasoning_effort"),
    ({"reasoning_effort": ""}, "reasoning_effort"),
])
def test_bad_values_name_the_param(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        reasoning_of(body)
    assert caught.value.param == param and caught.value.status == 400


def test_an_unknown_effort_is_refused_only_where_a_budget_is_needed() -> None:
    reasoning = reasoning_of({"reasoning_effort": "galaxy"})
    assert openai_effort(reasoning) == "galaxy"
    with pytest.raises(InvalidRequestError) as caught:
        anthropic_thinking(reasoning, 100)
    assert caught.value.param == "reasoning_effort"


def test_openai_body_leaves_plain_bodies_alone_and_strips_history() -> None:
    plain = {"messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "low"}
    assert openai_body(plain) is plain
    carried = {"messages": [{"role": "assistant", "content": "a", "reasoning_content": "r",
                             "thinking_blocks": [{"type": "thinking", "thinking": "r",
                                                  "signature": "s"}]}]}
    assert openai_body(carried) == {"messages": [{"role": "assistant", "content": "a"}]}
    assert "thinking_blocks" in carried["messages"][0]  # the caller's body is never changed


def test_another_upstreams_reasoning_becomes_a_thinking_block() -> None:
    completion = {"id": "chatcmpl-1", "model": "m", "choices": [{"finish_reason": "stop",
                  "message": {"role": "assistant", "content": "42",
                              "reasoning_content": "six times seven"}}]}
    assert to_message(completion)["content"] == [
        {"type": "thinking", "thinking": "six times seven", "signature": ""},
        {"type": "text", "text": "42"}]
    stream = MessageStream("m", "r1")
    events = b"".join([*stream.start(),
                       *stream.feed({"choices": [{"delta": {"reasoning_content": "six "}}]}),
                       *stream.feed({"choices": [{"delta": {"reasoning_content": "times"}}]}),
                       *stream.feed({"choices": [{"delta": {"content": "42"}}]}),
                       *stream.end()]).decode()
    assert events.count("event: content_block_start") == 2
    assert '"type":"thinking_delta","thinking":"six "' in events
    assert "signature_delta" not in events
    assert events.index("thinking_delta") < events.index("text_delta")
