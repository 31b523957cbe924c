"""Streaming through the gateway with the openai SDK, sync and async: chunks name the model that
answers, the usage chunk comes only when asked for, and Anthropic streams arrive in OpenAI shape."""

from __future__ import annotations

import json
import time

import openai
import pytest

from llmroute.testing.behaviours import SlowStream
from llmroute.testing.upstream import FakeUpstream

from .support import GatewayServer, user


def test_sync_stream_without_usage(client: openai.OpenAI, up: FakeUpstream) -> None:
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=user("hi there"),
                                                           stream=True)
    chunks = list(raw.parse())

    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.headers["x-llmroute-model"] == "fake/mini"
    assert raw.headers["x-llmroute-tier"] == "simple"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "echo from mini-up: hi there"
    assert {c.model for c in chunks} == {"fake/mini"}
    assert all(c.usage is None and c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    [request] = up.requests
    assert request.body is not None and request.body["stream"] is True


def test_sync_stream_with_usage(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model="auto", messages=user("hi there"), stream=True, stream_options={"include_usage": True}))

    *content, last = chunks
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (3, 7)
    # A stream has no cost header (headers go first): the usage chunk carries it, as OpenRouter's does.
    assert last.usage.model_extra == {"cost": pytest.approx((3 * 0.15 + 7 * 0.6) / 1e6)}
    assert all(c.usage is None for c in content)
    assert {c.model for c in chunks} == {"fake/mini"}


@pytest.mark.asyncio
async def test_async_stream_without_usage(gw: GatewayServer) -> None:
    async with gw.aclient() as client:
        stream = await client.chat.completions.create(
            model="auto", messages=user("please refactor this python code"), stream=True)
        chunks = [chunk async for chunk in stream]

    assert {c.model for c in chunks} == {"fake/big"}
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == (
        "echo from big-up: please refactor this python code")
    assert all(c.usage is None and c.choices for c in chunks)


@pytest.mark.asyncio
async def test_async_stream_with_usage(gw: GatewayServer) -> None:
    async with gw.aclient() as client:
        stream = await client.chat.completions.create(
            model="fake/mid", messages=user("hello"), stream=True,
            stream_options={"include_usage": True})
        chunks = [chunk async for chunk in stream]

    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 2
    assert sum(c.usage is not None for c in chunks) == 1
    assert {c.model for c in chunks} == {"fake/mid"}


@pytest.mark.asyncio
async def test_async_non_streaming(gw: GatewayServer) -> None:
    async with gw.aclient() as client:
        raw = await client.chat.completions.with_raw_response.create(model="auto",
                                                                     messages=user("hello"))
    resp = raw.parse()
    assert resp.model == "fake/mini"
    assert resp.choices[0].message.content == "echo from mini-up: hello"
    assert raw.headers["x-llmroute-cost-usd"]


def test_anthropic_text_stream(client: openai.OpenAI, up: FakeUpstream) -> None:
    chunks = list(client.chat.completions.create(
        model="anthropic-ish/claude", messages=user("hello there claude"), stream=True,
        stream_options={"include_usage": True}))

    [request] = up.requests
    assert request.protocol == "anthropic" and request.body is not None
    assert request.body["stream"] is True
    assert "stream_options" not in request.body
    assert {c.model for c in chunks} == {"anthropic-ish/claude"}
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo from claude-up: hello there claude"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None
    # "hello there claude" = 18 chars -> 5; the answer = 39 chars -> 10
    assert (usage.prompt_tokens, usage.completion_tokens) == (5, 10)


def test_anthropic_stream_without_usage_has_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="anthropic-ish/claude",
                                                 messages=user("hello"), stream=True))
    assert chunks and all(c.usage is None and c.choices for c in chunks)


def test_anthropic_tool_use_stream(client: openai.OpenAI) -> None:
    tool = {"type": "function", "function": {
        "name": "lookup", "parameters": {"type": "object", "properties": {}}}}
    stream = client.chat.completions.create(
        model="anthropic-ish/claude", messages=user("look it up"), stream=True,
        tools=[tool],
        tool_choice={"type": "function", "function": {"name": "lookup"}})
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        assert chunk.model == "anthropic-ish/claude"
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or []:
                entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                entry["id"] += call.id or ""
                entry["name"] += (call.function and call.function.name) or ""
                entry["arguments"] += (call.function and call.function.arguments) or ""
            finish = choice.finish_reason or finish

    assert list(calls) == [0]
    assert calls[0]["name"] == "lookup"
    assert calls[0]["id"]
    assert json.loads(calls[0]["arguments"]) == {}
    assert finish == "tool_calls"


def test_chunks_are_relayed_as_they_arrive(client: openai.OpenAI, up: FakeUpstream) -> None:
    """A slow upstream stream reaches the client chunk by chunk, not buffered to the end."""
    up.script("mini-up", SlowStream(chunk_delay_s=0.15))
    stream = client.chat.completions.create(model="fake/mini", messages=user("one two three four"),
                                            stream=True)
    arrivals = [time.monotonic() for _ in stream]

    assert len(arrivals) >= 6
    # the chunks arrived spread out over the upstream's pacing, not all at once at the end
    assert arrivals[-1] - arrivals[0] >= 0.15 * (len(arrivals) - 2)
