"""Tests for the fake upstream: driven by the real openai / anthropic SDKs and raw httpx."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from llmroute.testing.behaviours import (
    CutStream,
    Error,
    ErrorMidStream,
    Hang,
    Ok,
    SlowStream,
    bad_request,
    content_policy,
    context_length_exceeded,
    model_not_found,
    out_of_credits,
    overloaded,
    rate_limited,
    server_error,
    unauthorized,
)
from llmroute.testing.upstream import (
    DEFAULT_MODELS,
    FakeUpstream,
    count_tokens,
    default_answer,
    prompt_tokens_for,
)

MESSAGES: list[Any] = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "hello there world"},
]
TOOLS: list[Any] = [{
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}]
ANTHROPIC_TOOLS: list[Any] = [
    {"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}
]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


_open_clients: list[openai.OpenAI | anthropic.Anthropic] = []


@pytest.fixture
def up(server: FakeUpstream) -> Iterator[FakeUpstream]:
    server.reset()
    yield server
    while _open_clients:
        _open_clients.pop().close()


def oai(up: FakeUpstream, **kwargs: Any) -> openai.OpenAI:
    client = openai.OpenAI(base_url=up.openai_base_url, api_key="sk-test",
                           max_retries=kwargs.pop("max_retries", 0), **kwargs)
    _open_clients.append(client)
    return client


def claude(up: FakeUpstream, **kwargs: Any) -> anthropic.Anthropic:
    client = anthropic.Anthropic(base_url=up.anthropic_base_url, api_key="sk-ant-test",
                                 max_retries=kwargs.pop("max_retries", 0), **kwargs)
    _open_clients.append(client)
    return client


def sse_lines(raw: str) -> list[str]:
    return [line for line in raw.split("\n") if line]


# ----- lifecycle ------------------------------------------------------------------------------


def test_urls_and_accepting_connections(up: FakeUpstream) -> None:
    assert up.base_url == f"http://127.0.0.1:{up.port}"
    assert up.openai_base_url == up.base_url + "/v1"
    assert up.anthropic_base_url == up.base_url
    with socket.create_connection(("127.0.0.1", up.port), timeout=1):
        pass
    models = oai(up).models.list()
    assert [m.id for m in models.data] == list(DEFAULT_MODELS)


def test_not_running_has_no_url() -> None:
    with pytest.raises(RuntimeError):
        _ = FakeUpstream().base_url


def test_stop_is_prompt_with_a_hung_request() -> None:
    outcome: list[BaseException | int] = []
    upstream = FakeUpstream().start()
    upstream.set_default("*", Hang())

    def call() -> None:
        try:
            outcome.append(httpx.post(upstream.openai_base_url + "/chat/completions",
                                      json={"model": "m", "messages": []}, timeout=10).status_code)
        except httpx.HTTPError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    assert upstream.wait_for_requests(1, timeout_s=5)
    started = time.monotonic()
    upstream.stop()
    assert time.monotonic() - started < 1.5
    thread.join(5)
    assert isinstance(outcome[0], httpx.RemoteProtocolError)  # dropped, never answered


# ----- OpenAI ---------------------------------------------------------------------------------


def test_openai_non_streaming(up: FakeUpstream) -> None:
    result = oai(up).chat.completions.create(model="gpt-x", messages=MESSAGES)
    answer = default_answer("gpt-x", MESSAGES)
    assert answer == "echo from gpt-x: hello there world"
    assert result.model == "gpt-x"
    assert result.choices[0].message.content == answer
    assert result.choices[0].finish_reason == "stop"
    assert result.usage is not None
    assert result.usage.prompt_tokens == prompt_tokens_for(MESSAGES) == (8 + 17) // 4 + 1
    assert result.usage.completion_tokens == count_tokens(answer)
    assert result.usage.total_tokens == result.usage.prompt_tokens + count_tokens(answer)


def test_openai_streaming_with_usage(up: FakeUpstream) -> None:
    stream = oai(up).chat.completions.create(
        model="gpt-x", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    texts = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(texts) == default_answer("gpt-x", MESSAGES)
    assert len([t for t in texts if t]) == 6  # one chunk per word
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == prompt_tokens_for(MESSAGES)
    assert all(c.model == "gpt-x" for c in chunks)


def test_openai_raw_stream_shape(up: FakeUpstream) -> None:
    body = {"model": "m", "messages": MESSAGES, "stream": True}
    response = httpx.post(up.openai_base_url + "/chat/completions", json=body)
    assert response.headers["content-type"].startswith("text/event-stream")
    lines = sse_lines(response.text)
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    payloads = [json.loads(line[6:]) for line in lines[:-1]]
    assert all("usage" not in p for p in payloads)  # no include_usage, no usage
    assert payloads[0]["choices"][0]["delta"]["role"] == "assistant"


@pytest.mark.asyncio
async def test_openai_async(up: FakeUpstream) -> None:
    client = openai.AsyncOpenAI(base_url=up.openai_base_url, api_key="k", max_retries=0)
    result = await client.chat.completions.create(model="a", messages=MESSAGES)
    assert result.choices[0].message.content == default_answer("a", MESSAGES)
    stream = await client.chat.completions.create(
        model="a", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        default_answer("a", MESSAGES))
    assert chunks[-1].usage is not None
    await client.close()


def test_openai_tool_call_from_tool_choice(up: FakeUpstream) -> None:
    choice: Any = {"type": "function", "function": {"name": "get_weather"}}
    client = oai(up)
    result = client.chat.completions.create(
        model="m", messages=MESSAGES, tools=TOOLS, tool_choice=choice)
    message = result.choices[0]
    assert message.finish_reason == "tool_calls"
    assert message.message.tool_calls is not None
    call = message.message.tool_calls[0]
    assert call.type == "function"
    assert (call.function.name, call.function.arguments) == ("get_weather", "{}")
    chunks = list(client.chat.completions.create(
        model="m", messages=MESSAGES, tools=TOOLS, tool_choice=choice, stream=True))
    name = arguments = ""
    for chunk in chunks:
        for delta in chunk.choices[0].delta.tool_calls or []:
            assert delta.function is not None
            name += delta.function.name or ""
            arguments += delta.function.arguments or ""
    assert (name, arguments) == ("get_weather", "{}")
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_openai_tool_call_from_marker(up: FakeUpstream) -> None:
    messages: Any = [{"role": "user", "content": "please [[tool:lookup]]"}]
    result = oai(up).chat.completions.create(model="m", messages=messages)
    assert result.choices[0].message.tool_calls is not None
    assert result.choices[0].message.tool_calls[0].function.name == "lookup"  # type: ignore[union-attr]


# ----- Anthropic ------------------------------------------------------------------------------

A_MESSAGES: list[Any] = [{"role": "user", "content": [{"type": "text", "text": "hi claude"}]}]


def test_anthropic_non_streaming(up: FakeUpstream) -> None:
    message = claude(up).messages.create(
        model="claude-x", max_tokens=50, system="sys!", messages=A_MESSAGES)
    assert message.model == "claude-x"
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text"
    assert message.content[0].text == "echo from claude-x: hi claude"
    assert message.usage.input_tokens == prompt_tokens_for(A_MESSAGES, "sys!") == 4
    assert message.usage.output_tokens == count_tokens("echo from claude-x: hi claude")


def test_anthropic_raw_event_sequence(up: FakeUpstream) -> None:
    body = {"model": "c", "max_tokens": 5, "messages": A_MESSAGES, "stream": True}
    response = httpx.post(up.base_url + "/v1/messages", json=body)
    lines = sse_lines(response.text)
    events = [line[7:] for line in lines if line.startswith("event: ")]
    datas = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    assert len(events) == len(datas) == len(lines) // 2
    assert [d["type"] for d in datas] == events
    deltas = events.count("content_block_delta")
    assert deltas == 5  # one per word
    assert events == ["message_start", "content_block_start", "ping",
                      *["content_block_delta"] * deltas,
                      "content_block_stop", "message_delta", "message_stop"]
    assert datas[-2]["delta"]["stop_reason"] == "end_turn"
    assert datas[-2]["usage"]["output_tokens"] == count_tokens("echo from c: hi claude")


def test_anthropic_stream_helper(up: FakeUpstream) -> None:
    with claude(up).messages.stream(model="c", max_tokens=5, messages=A_MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "echo from c: hi claude"
    assert final.content[0].type == "text"
    assert final.usage.output_tokens == count_tokens(text)
    assert final.usage.input_tokens == prompt_tokens_for(A_MESSAGES)


def test_anthropic_tool_use(up: FakeUpstream) -> None:
    client = claude(up)
    message = client.messages.create(
        model="c", max_tokens=5, messages=A_MESSAGES, tools=ANTHROPIC_TOOLS,
        tool_choice={"type": "tool", "name": "get_weather"})
    assert message.stop_reason == "tool_use"
    block = message.content[0]
    assert block.type == "tool_use"
    assert (block.name, block.input) == ("get_weather", {})
    marker: Any = [{"role": "user", "content": "go [[tool:search]]"}]
    with client.messages.stream(model="c", max_tokens=5, messages=marker) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == "tool_use"
    assert (final.content[0].name, final.content[0].input) == ("search", {})


@pytest.mark.asyncio
async def test_anthropic_async_stream(up: FakeUpstream) -> None:
    client = anthropic.AsyncAnthropic(base_url=up.anthropic_base_url, api_key="k", max_retries=0)
    stream = await client.messages.create(
        model="c", max_tokens=5, messages=A_MESSAGES, stream=True)
    types = [event.type async for event in stream]
    assert types[0] == "message_start"
    assert types[-1] == "message_stop"
    await client.close()


# ----- errors ---------------------------------------------------------------------------------

OPENAI_ERRORS: list[tuple[Error, type[Exception], int, str | None]] = [
    (rate_limited(), openai.RateLimitError, 429, "rate_limit_exceeded"),
    (server_error(), openai.InternalServerError, 500, None),
    (overloaded(), openai.InternalServerError, 503, None),
    (context_length_exceeded(), openai.BadRequestError, 400, "context_length_exceeded"),
    (content_policy(), openai.BadRequestError, 400, "content_policy_violation"),
    (content_policy("content_filter"), openai.BadRequestError, 400, "content_filter"),
    (unauthorized(), openai.AuthenticationError, 401, "invalid_api_key"),
    (out_of_credits(), openai.RateLimitError, 429, "insufficient_quota"),
    (out_of_credits(402), openai.APIStatusError, 402, "insufficient_quota"),
    (bad_request("nope"), openai.BadRequestError, 400, None),
    (model_not_found("zz"), openai.NotFoundError, 404, "model_not_found"),
]


@pytest.mark.parametrize(("behaviour", "exc_class", "status", "code"), OPENAI_ERRORS)
def test_openai_errors(
    up: FakeUpstream, behaviour: Error, exc_class: type[Exception], status: int, code: str | None
) -> None:
    up.script("m", behaviour)
    with pytest.raises(openai.APIStatusError) as info:
        oai(up).chat.completions.create(model="m", messages=MESSAGES)
    assert type(info.value) is exc_class
    assert info.value.status_code == status
    assert info.value.code == code
    assert isinstance(info.value.body, dict)
    assert set(info.value.body) == {"message", "type", "param", "code"}


ANTHROPIC_ERRORS: list[tuple[Error, type[Exception], int, str]] = [
    (rate_limited(), anthropic.RateLimitError, 429, "rate_limit_error"),
    (server_error(), anthropic.InternalServerError, 500, "api_error"),
    (overloaded(), anthropic.OverloadedError, 529, "overloaded_error"),
    (context_length_exceeded(), anthropic.BadRequestError, 400, "invalid_request_error"),
    (content_policy(), anthropic.BadRequestError, 400, "invalid_request_error"),
    (unauthorized(), anthropic.AuthenticationError, 401, "authentication_error"),
    (out_of_credits(), anthropic.PaymentRequiredError, 402, "billing_error"),
    (bad_request("nope"), anthropic.BadRequestError, 400, "invalid_request_error"),
    (model_not_found("zz"), anthropic.NotFoundError, 404, "not_found_error"),
    (Error(418, "teapot"), anthropic.APIStatusError, 418, "api_error"),
]


@pytest.mark.parametrize(("behaviour", "exc_class", "status", "err_type"), ANTHROPIC_ERRORS)
def test_anthropic_errors(
    up: FakeUpstream, behaviour: Error, exc_class: type[Exception], status: int, err_type: str
) -> None:
    up.script("c", behaviour)
    with pytest.raises(anthropic.APIStatusError) as info:
        claude(up).messages.create(model="c", max_tokens=5, messages=A_MESSAGES)
    assert type(info.value) is exc_class
    assert info.value.status_code == status
    body = info.value.body
    assert isinstance(body, dict)
    assert body["type"] == "error"
    assert body["error"]["type"] == err_type
    assert set(body["error"]) == {"type", "message"}


def test_error_details(up: FakeUpstream) -> None:
    up.script("m", rate_limited(retry_after_s=7))
    up.script("c", context_length_exceeded(), rate_limited(2))
    with pytest.raises(openai.RateLimitError) as oa:
        oai(up).chat.completions.create(model="m", messages=MESSAGES)
    assert oa.value.response.headers["retry-after"] == "7"
    assert oa.value.type == "rate_limit_error"
    with pytest.raises(anthropic.BadRequestError) as an:
        claude(up).messages.create(model="c", max_tokens=5, messages=A_MESSAGES)
    assert an.value.message.count("prompt is too long: 250000 tokens > 200000 maximum") == 1
    with pytest.raises(anthropic.RateLimitError) as an_rl:
        claude(up).messages.create(model="c", max_tokens=5, messages=A_MESSAGES)
    assert an_rl.value.response.headers["retry-after"] == "2"


def test_sdk_retries_a_rate_limit(up: FakeUpstream) -> None:
    up.script("m", rate_limited(retry_after_s=0.05))
    result = oai(up, max_retries=2).chat.completions.create(model="m", messages=MESSAGES)
    assert result.choices[0].message.content == default_answer("m", MESSAGES)
    retries = [r.headers.get("x-stainless-retry-count") for r in up.requests_for("m")]
    assert retries == ["0", "1"]


def test_error_delay(up: FakeUpstream) -> None:
    up.script("m", Error(500, "slow fail", delay_s=0.2))
    started = time.monotonic()
    response = httpx.post(up.openai_base_url + "/chat/completions",
                          json={"model": "m", "messages": MESSAGES})
    assert time.monotonic() - started >= 0.2
    assert response.json() == {"error": {"message": "slow fail", "type": "server_error",
                                         "param": None, "code": None}}


# ----- misbehaviour ---------------------------------------------------------------------------


def test_hang_times_out_clients(up: FakeUpstream) -> None:
    up.script("m", Hang())
    up.script("c", Hang())
    with pytest.raises(openai.APITimeoutError):
        oai(up, timeout=0.3).chat.completions.create(model="m", messages=MESSAGES)
    with pytest.raises(anthropic.APITimeoutError):
        claude(up, timeout=0.3).messages.create(model="c", max_tokens=5, messages=A_MESSAGES)


def test_hang_mid_stream(up: FakeUpstream) -> None:
    up.script("m", Hang(after_chunks=2))
    received: list[str] = []
    stream = oai(up, timeout=0.4).chat.completions.create(
        model="m", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APITimeoutError):
        received.extend(c.choices[0].delta.content or "" for c in stream)
    assert received == ["", "echo "]


def test_cut_stream_openai(up: FakeUpstream) -> None:
    up.script("m", CutStream(after_chunks=3), CutStream(), CutStream())
    received: list[str] = []
    finishes: list[str | None] = []
    stream = oai(up).chat.completions.create(model="m", messages=MESSAGES, stream=True)
    # The truncated body raises (which class depends on the SDK release: APIConnectionError today,
    # the transport's own error in others), and only after the chunks that did arrive.
    with pytest.raises(Exception) as info:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
            finishes.append(chunk.choices[0].finish_reason)
    assert not isinstance(info.value, openai.APITimeoutError | AssertionError)
    assert received == ["", "echo ", "from "]
    assert finishes == [None, None, None]  # never presented as complete
    assert "".join(received) != default_answer("m", MESSAGES)
    with pytest.raises(openai.APIConnectionError):  # non-streaming: no response at all
        oai(up).chat.completions.create(model="m", messages=MESSAGES)
    with httpx.stream("POST", up.openai_base_url + "/chat/completions",
                      json={"model": "m", "messages": MESSAGES, "stream": True}) as response:
        raw: list[str] = []
        with pytest.raises(httpx.RemoteProtocolError):
            raw.extend(response.iter_lines())
    assert "data: [DONE]" not in raw


def test_cut_stream_anthropic(up: FakeUpstream) -> None:
    up.script("c", CutStream(after_chunks=4), CutStream())
    events: list[Any] = []
    stream = claude(up).messages.create(
        model="c", max_tokens=5, messages=A_MESSAGES, stream=True)
    # The truncated body raises; which class depends on the SDK release (the transport's own
    # RemoteProtocolError in some, wrapped in anthropic.APIConnectionError in others).
    with pytest.raises(Exception) as info:
        events.extend(event for event in stream)
    assert not isinstance(info.value, anthropic.APITimeoutError | AssertionError)
    types = [event.type for event in events if event.type != "ping"]  # some releases yield pings
    assert types == ["message_start", "content_block_start", "content_block_delta"]
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert text and "echo from c: hi claude".startswith(text) and text != "echo from c: hi claude"
    with pytest.raises(anthropic.APIConnectionError):
        claude(up).messages.create(model="c", max_tokens=5, messages=A_MESSAGES)


def test_error_mid_stream_openai(up: FakeUpstream) -> None:
    up.script("m", ErrorMidStream(after_chunks=2), ErrorMidStream(error=server_error()))
    received: list[str] = []
    stream = oai(up).chat.completions.create(model="m", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError) as info:
        received.extend(c.choices[0].delta.content or "" for c in stream)
    # a plain APIError: no status class, the HTTP status was 200
    assert type(info.value) is openai.APIError
    assert isinstance(info.value.body, dict)
    assert info.value.body["type"] == "server_error"
    assert received == ["", "echo "]
    with pytest.raises(openai.InternalServerError):  # non-streaming: a plain HTTP error
        oai(up).chat.completions.create(model="m", messages=MESSAGES)


def test_error_mid_stream_anthropic(up: FakeUpstream) -> None:
    up.script("c", ErrorMidStream(after_chunks=4))
    types: list[str] = []
    stream = claude(up).messages.create(
        model="c", max_tokens=5, messages=A_MESSAGES, stream=True)
    with pytest.raises(anthropic.APIStatusError) as info:
        types.extend(event.type for event in stream)
    # the SDK builds the error from the 200 response: generic APIStatusError, not Overloaded
    assert type(info.value) is anthropic.APIStatusError
    assert info.value.status_code == 200
    assert info.value.body == {"type": "error",
                               "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert types == ["message_start", "content_block_start", "content_block_delta"]


def test_slow_stream(up: FakeUpstream) -> None:
    up.script("m", SlowStream(chunk_delay_s=0.03, first_chunk_delay_s=0.2))
    started = time.monotonic()
    stream = oai(up).chat.completions.create(model="m", messages=MESSAGES, stream=True)
    first = None
    for _ in stream:
        first = first or time.monotonic() - started
    total = time.monotonic() - started
    assert first is not None
    assert 0.2 <= first < 0.5
    assert total >= 0.2 + 0.03 * 8  # 9 events: role, 6 words, stop, [DONE]


def test_ok_overrides(up: FakeUpstream) -> None:
    up.script("m", Ok(text="fixed answer", delay_s=0.15), Ok(tool_call="calc"))
    started = time.monotonic()
    result = oai(up).chat.completions.create(model="m", messages=MESSAGES)
    assert time.monotonic() - started >= 0.15
    assert result.choices[0].message.content == "fixed answer"
    assert result.usage is not None
    assert result.usage.completion_tokens == count_tokens("fixed answer")
    result = oai(up).chat.completions.create(model="m", messages=MESSAGES)
    assert result.choices[0].message.tool_calls is not None
    assert result.choices[0].message.tool_calls[0].function.name == "calc"  # type: ignore[union-attr]


# ----- scripting, recording, auth, validation -------------------------------------------------


def test_scripting_is_per_model(up: FakeUpstream) -> None:
    client = oai(up)
    up.script("a", server_error(), Error(503, "again"))
    up.set_default("b", unauthorized())

    def ask(model: str) -> str:
        try:
            client.chat.completions.create(model=model, messages=MESSAGES)
        except openai.APIStatusError as exc:
            return str(exc.status_code)
        return "ok"

    assert up.pending("a") == 2
    assert [ask("a"), ask("b"), ask("c"), ask("a"), ask("a"), ask("b")] == [
        "500", "401", "ok", "503", "ok", "401"]
    assert up.pending("a") == 0
    up.set_default("*", server_error())
    assert (ask("a"), ask("b"), ask("zzz")) == ("500", "401", "500")
    up.set_default("b", None)
    assert ask("b") == "500"
    assert up.calls == {"a": 4, "b": 4, "c": 1, "zzz": 1}
    up.reset()
    assert (ask("a"), ask("b"), up.calls) == ("ok", "ok", {"a": 1, "b": 1})


def test_requests_are_recorded(up: FakeUpstream) -> None:
    before = time.time()
    oai(up).chat.completions.create(model="gpt-r", messages=MESSAGES, temperature=0.5)
    claude(up).messages.create(model="claude-r", max_tokens=9, messages=A_MESSAGES)
    first, second = up.requests
    assert (first.protocol, first.path, first.model) == ("openai", "/v1/chat/completions",
                                                         "gpt-r")
    assert first.headers["authorization"] == "Bearer sk-test"
    assert first.body is not None
    assert first.body["temperature"] == 0.5
    assert before <= first.timestamp <= second.timestamp <= time.time()
    assert (second.protocol, second.path, second.model) == ("anthropic", "/v1/messages",
                                                            "claude-r")
    # anthropic SDK 2.x sends the API key as a bearer token, not x-api-key
    assert second.headers["authorization"] == "Bearer sk-ant-test"
    assert "anthropic-version" in second.headers
    assert all(name == name.lower() for name in second.headers)
    assert up.requests_for("claude-r") == [second]
    assert (up.call_count("gpt-r"), up.call_count("nope"), up.call_count()) == (1, 0, 2)
    assert up.wait_for_requests(2, timeout_s=0.1)
    assert not up.wait_for_requests(3, timeout_s=0.05)


def test_auth() -> None:
    with FakeUpstream(api_key="sk-good") as up:
        for key, ok in (("sk-bad", False), ("sk-good", True)):
            with openai.OpenAI(base_url=up.openai_base_url, api_key=key, max_retries=0) as oa:
                if ok:
                    assert oa.chat.completions.create(model="m", messages=MESSAGES).model == "m"
                else:
                    with pytest.raises(openai.AuthenticationError) as info:
                        oa.chat.completions.create(model="m", messages=MESSAGES)
                    assert info.value.code == "invalid_api_key"
            with anthropic.Anthropic(base_url=up.base_url, api_key=key, max_retries=0) as an:
                if ok:
                    assert an.messages.create(model="c", max_tokens=5, messages=A_MESSAGES)
                else:
                    with pytest.raises(anthropic.AuthenticationError):
                        an.messages.create(model="c", max_tokens=5, messages=A_MESSAGES)
            body = {"model": "c", "max_tokens": 5, "messages": A_MESSAGES}
            response = httpx.post(up.base_url + "/v1/messages", json=body,
                                  headers={"x-api-key": key})  # the classic header works too
            assert response.status_code == (200 if ok else 401)
        assert httpx.get(up.openai_base_url + "/models").status_code == 401
        assert len(up.requests) == 6  # rejected requests are recorded too


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/v1/chat/completions", {"messages": []},
         {"error": {"message": "you must provide a model parameter",
                    "type": "invalid_request_error", "param": None, "code": None}}),
        ("/v1/chat/completions", {"model": "m"},
         {"error": {"message": "Missing required parameter: 'messages'.",
                    "type": "invalid_request_error", "param": "messages",
                    "code": "missing_required_parameter"}}),
        ("/v1/messages", {"model": "c", "messages": []},
         {"type": "error",
          "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"}}),
        ("/v1/messages", {"max_tokens": 3, "messages": []},
         {"type": "error",
          "error": {"type": "invalid_request_error", "message": "model: Field required"}}),
    ],
)
def test_validation(up: FakeUpstream, path: str, body: dict[str, Any],
                    expected: dict[str, Any]) -> None:
    up.script("m", server_error())  # never reached: validation comes first
    response = httpx.post(up.base_url + path, json=body)
    assert response.status_code == 400
    payload = response.json()
    payload.pop("request_id", None)
    assert payload == expected
    assert up.pending("m") == 1


def test_bad_json_and_unknown_path(up: FakeUpstream) -> None:
    response = httpx.post(up.openai_base_url + "/chat/completions", content=b"{not json")
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert up.requests[0].body is None
    response = httpx.post(up.openai_base_url + "/nope", json={})
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Invalid URL (POST /v1/nope)"


def test_anthropic_models_list(up: FakeUpstream) -> None:
    oai(up).chat.completions.create(model="seen-model", messages=MESSAGES)
    page = claude(up).models.list()
    assert [m.id for m in page.data] == [*DEFAULT_MODELS, "seen-model"]
