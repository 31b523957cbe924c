"""Reasoning on the Gemini and Bedrock deployments, with the openai SDK as the client: Gemini
gets `generationConfig.thinkingConfig` and its thought parts come back as `reasoning_content`;
a Claude model on Bedrock gets `additionalModelRequestFields.thinking`, its `reasoningContent`
comes back as reasoning with the signature, and goes back in a tool round trip; streaming and
not."""

from __future__ import annotations

from typing import Any

import pytest

from llmroute.testing.upstream import FakeUpstream

from .support import Serve
from .test_azure_gemini import AZURE, GEMINI, providers
from .test_bedrock import AWS_ENV, MODEL, WEATHER, bedrock_config


def reasoning_of(chunks: list[Any]) -> str:
    return "".join(getattr(c.choices[0].delta, "reasoning_content", None) or ""
                   for c in chunks if c.choices)


@pytest.mark.parametrize("stream", [False, True])
def test_gemini_thinking_config_and_thoughts(serve: Serve, up: FakeUpstream, stream: bool) -> None:
    with serve(providers(up)).client() as client:
        args: dict[str, Any] = {"model": GEMINI, "reasoning_effort": "medium",
                                "messages": [{"role": "user", "content": "prove it"}]}
        if stream:
            chunks = list(client.chat.completions.create(
                stream=True, stream_options={"include_usage": True}, **args))
            reasoning, usage = reasoning_of(chunks), chunks[-1].usage
        else:
            answer = client.chat.completions.create(**args)
            reasoning = answer.choices[0].message.reasoning_content  # type: ignore[attr-defined]
            usage = answer.usage
    sent = up.requests[-1].body
    assert sent is not None and sent["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 2048, "includeThoughts": True}
    assert "reasoning_effort" not in sent
    assert reasoning == "thinking about: prove it"
    assert usage is not None and usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 7  # the fake: 24 chars // 4 + 1


def test_gemini_thinking_off(serve: Serve, up: FakeUpstream) -> None:
    with serve(providers(up)).client() as client:
        answer = client.chat.completions.create(
            model=GEMINI, reasoning_effort="none", messages=[{"role": "user", "content": "hi"}])
    sent = up.requests[-1].body
    assert sent is not None and sent["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 0}
    assert getattr(answer.choices[0].message, "reasoning_content", None) is None


@pytest.mark.parametrize("stream", [False, True])
def test_bedrock_claude_thinks_and_gets_its_blocks_back(serve: Serve, up: FakeUpstream,
                                                         stream: bool) -> None:
    ask: Any = {"role": "user", "content": "weather? [[tool:get_weather]]"}
    args: dict[str, Any] = {"model": MODEL, "max_tokens": 100, "tools": WEATHER,
                            "extra_body": {"thinking": {"type": "enabled", "budget_tokens": 1500}}}
    with serve(bedrock_config(up), environ=AWS_ENV).client() as client:
        if stream:
            chunks = list(client.chat.completions.create(messages=[ask], stream=True, **args))
            deltas: list[Any] = [c.choices[0].delta for c in chunks if c.choices]
            reasoning = reasoning_of(chunks)
            blocks = [b for d in deltas for b in (getattr(d, "thinking_blocks", None) or ())]
            signature = blocks[0]["signature"]
            call = next(d.tool_calls[0] for d in deltas if d.tool_calls)
            call_id, name = call.id, call.function.name
        else:
            answer = client.chat.completions.create(messages=[ask], **args)
            message: Any = answer.choices[0].message
            reasoning = message.reasoning_content
            signature = message.thinking_blocks[0]["signature"]
            call_id, name = message.tool_calls[0].id, message.tool_calls[0].function.name
        first = up.requests[-1].body
        assert first is not None and first["additionalModelRequestFields"]["thinking"] == {
            "type": "enabled", "budget_tokens": 1500}
        assert first["inferenceConfig"]["maxTokens"] == 1600
        assert reasoning == "thinking about: weather? [[tool:get_weather]]"
        assert signature.startswith("sig-fake")
        turn = {"role": "assistant", "content": None, "thinking_blocks": [
                    {"type": "thinking", "thinking": reasoning, "signature": signature}],
                "tool_calls": [{"id": call_id, "type": "function",
                                "function": {"name": name, "arguments": "{}"}}]}
        client.chat.completions.create(
            messages=[ask, turn, {"role": "tool", "tool_call_id": call_id, "content": "sunny"}],
            **args)
    back = up.requests[-1].body
    assert back is not None and back["messages"][1]["content"][0] == {"reasoningContent": {
        "reasoningText": {"text": reasoning, "signature": signature}}}


def test_bedrock_non_claude_models_get_no_thinking(serve: Serve, up: FakeUpstream) -> None:
    config = bedrock_config(up)
    config["models"] = {"bedrock/amazon.nova-pro-v1:0": {}}
    with serve(config, environ=AWS_ENV).client() as client:
        client.chat.completions.create(model="bedrock/amazon.nova-pro-v1:0",
                                       reasoning_effort="high", max_tokens=100,
                                       messages=[{"role": "user", "content": "hi"}])
    sent = up.requests[-1].body
    assert sent is not None and "additionalModelRequestFields" not in sent
    assert sent["inferenceConfig"]["maxTokens"] == 100


def test_azure_gets_thinking_as_an_effort(serve: Serve, up: FakeUpstream) -> None:
    with serve(providers(up)).client() as client:
        client.chat.completions.create(
            model=AZURE, extra_body={"thinking": {"type": "enabled", "budget_tokens": 4096}},
            messages=[{"role": "user", "content": "hi"},
                      {"role": "assistant", "content": "hello",  # type: ignore[misc]
                       "reasoning_content": "r"},
                      {"role": "user", "content": "again"}])
    sent = up.requests[-1].body
    assert sent is not None and "thinking" not in sent and sent["reasoning_effort"] == "high"
    assert sent["messages"][1] == {"role": "assistant", "content": "hello"}
