"""Every bad input gets the right 4xx in OpenAI's error shape, never a 500, and reaches no upstream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from llmroute.testing.upstream import FakeUpstream

from .support import GatewayServer, Serve, assert_openai_error, user

CHAT = "/v1/chat/completions"


@pytest.fixture(autouse=True)
def no_upstream_call(up: FakeUpstream) -> Iterator[None]:
    yield
    assert up.call_count() == 0, "a bad request reached the upstream"


def check(resp: httpx.Response, status: int, param: str | None = None,
          code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    error = assert_openai_error(resp.json())
    if param is not None:
        assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    return error


def test_malformed_json(http: httpx.Client) -> None:
    resp = http.post(CHAT, content=b'{"model": "auto", "messages": [',
                     headers={"content-type": "application/json"})
    error = check(resp, 400)
    assert error["type"] == "invalid_request_error"
    assert "JSON" in error["message"]


def test_empty_body(http: httpx.Client) -> None:
    check(http.post(CHAT, content=b""), 400)


@pytest.mark.parametrize("body", [b"[1, 2]", b'"hello"', b"42", b"null"])
def test_body_not_an_object(http: httpx.Client, body: bytes) -> None:
    error = check(http.post(CHAT, content=body), 400)
    assert "object" in error["message"]


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "auto"}, "messages"),
    ({"model": "auto", "messages": "hello"}, "messages"),
    ({"model": "auto", "messages": []}, "messages"),
    ({"model": "auto", "messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
    ({"model": "auto", "messages": [{"content": "hi"}]}, "messages[0].role"),
    ({"model": "auto", "messages": ["hi"]}, "messages[0]"),
    ({"model": "auto", "messages": [{"role": "user", "content": 42}]}, "messages[0].content"),
    ({"model": "auto", "messages": user("hi"), "temperature": "hot"}, "temperature"),
    ({"model": "auto", "messages": user("hi"), "temperature": "0.5"}, "temperature"),
    ({"model": "auto", "messages": user("hi"), "temperature": 3}, "temperature"),
    ({"model": "auto", "messages": user("hi"), "max_tokens": 0}, "max_tokens"),
    ({"model": "auto", "messages": user("hi"), "max_tokens": "100"}, "max_tokens"),
    ({"model": "auto", "messages": user("hi"), "n": "2"}, "n"),
    ({"model": "auto", "messages": user("hi"), "stream": "yes"}, "stream"),
    ({"model": "auto", "messages": user("hi"), "tools": {"type": "function"}}, "tools"),
    ({"model": "auto", "messages": user("hi"), "user": 7}, "user"),
    ({"model": 42, "messages": user("hi")}, "model"),
    ({"messages": user("hi")}, "model"),
    ({"model": "", "messages": user("hi")}, "model"),
    ({"model": "auto", "messages": user("hi"), "plugins": [{"id": "web"}]}, "plugins[0].id"),
    ({"model": "auto", "messages": user("hi"), "plugins": "auto-router"}, "plugins"),
    ({"model": "auto", "messages": user("hi"), "models": "fake/mini"}, "models"),
    # the OpenAI schema, part by part (tests/test_chat_schema.py has the full table)
    ({"model": "auto", "messages": [*user("hi"), {"role": "user", "content": [
        {"type": "text", "text": "see"}, {"type": "image_url", "image_url": {"detail": "low"}}]}]},
     "messages[1].content[1].image_url.url"),
    ({"model": "auto", "messages": user("hi"),
      "tools": [{"type": "function", "function": {"name": "no spaces allowed"}}]},
     "tools[0].function.name"),
    ({"model": "auto", "messages": [*user("hi"), {"role": "tool", "content": "42",
                                                  "tool_call_id": "call_x"}]},
     "messages[1].tool_call_id"),
    ({"model": "auto", "messages": user("hi"), "tool_choice": {
        "type": "function", "function": {"name": "missing"}}}, "tool_choice.function.name"),
    ({"model": "auto", "messages": user("hi"), "response_format": {"type": "json_schema"}},
     "response_format.json_schema"),
    ({"model": "auto", "messages": user("hi"), "stop": ["1", "2", "3", "4", "5"]}, "stop"),
    ({"model": "auto", "messages": user("hi"), "logit_bias": {"token": 5}}, "logit_bias.token"),
    ({"model": "auto", "messages": user("hi"), "top_p": 1.5}, "top_p"),
    ({"model": "auto", "messages": user("hi"), "top_logprobs": 5}, "top_logprobs"),
])
def test_invalid_fields_are_400_with_the_param(http: httpx.Client, body: dict[str, Any],
                                               param: str) -> None:
    error = check(http.post(CHAT, json=body), 400, param=param)
    assert error["type"] == "invalid_request_error"


def test_unknown_model_is_a_404(http: httpx.Client) -> None:
    error = check(http.post(CHAT, json={"model": "gpt-9", "messages": user("hi")}), 404,
                  param="model", code="model_not_found")
    assert "auto" in error["message"] and "fake/mini" in error["message"]


def test_an_unknown_model_among_the_fallbacks_is_a_404(http: httpx.Client) -> None:
    check(http.post(CHAT, json={"model": "fake/mini", "models": ["gpt-9"], "messages": user("hi")}),
          404, param="model", code="model_not_found")


def test_unknown_policy_is_a_404(http: httpx.Client) -> None:
    error = check(http.post(CHAT, json={"model": "auto/nope", "messages": user("hi")}), 404,
                  param="model", code="model_not_found")
    assert "nope" in error["message"]


def test_oversized_body_is_a_413(serve: Serve, up: FakeUpstream) -> None:
    gw = serve({"server": {"max_body_bytes": 2048}})
    body = {"model": "auto", "messages": user("x" * 4096)}
    with gw.http() as http:
        check(http.post(CHAT, json=body), 413, code="request_too_large")
        # without a Content-Length (chunked), the limit holds while reading
        chunks = iter([b'{"model": "auto", "messages": [{"role": "user", "content": "', b"x" * 4096,
                       b'"}]}'])
        check(http.post(CHAT, content=chunks), 413, code="request_too_large")
        assert up.call_count() == 0
        # under the limit is fine
        assert http.post(CHAT, json={"model": "auto", "messages": user("x" * 100)}).status_code == 200
    up.reset()   # that one reached the upstream, as it should


def test_a_request_no_model_can_take_is_a_400(http: httpx.Client) -> None:
    body = {"model": "auto", "messages": user("hi"),
            "plugins": [{"id": "auto-router", "allowed_models": ["nothing/*"]}]}
    check(http.post(CHAT, json=body), 400, code="no_eligible_model")


def test_a_prompt_over_every_context_window_is_a_400(http: httpx.Client) -> None:
    # ~1.2M tokens (4 chars each) exceeds even fake/huge's 1M window
    body = {"model": "fake/mini", "messages": user("word " * 1_000_000)}
    error = check(http.post(CHAT, json=body), 400, code="no_eligible_model")
    assert "context window" in error["message"]


def test_unknown_route_is_a_json_404(http: httpx.Client) -> None:
    error = check(http.get("/v1/nowhere"), 404)
    assert "/v1/nowhere" in error["message"]


def test_wrong_method_is_a_json_405(http: httpx.Client) -> None:
    resp = http.get(CHAT)
    error = check(resp, 405)
    assert error["type"] == "invalid_request_error"
    assert resp.headers["allow"] == "POST"
    resp = http.post("/v1/models")
    check(resp, 405)
    assert set(resp.headers["allow"].split(", ")) == {"GET", "HEAD"}


# -- the same through the SDK -------------------------------------------------------------------

def test_sdk_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="auto", messages=[])
    assert caught.value.status_code == 400
    assert assert_openai_error({"error": caught.value.body})["param"] == "messages"


def test_sdk_bad_role(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="auto",
                                       messages=[{"role": "robot", "content": "hi"}])
    assert caught.value.body["param"] == "messages[0].role"


def test_sdk_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="no/such-model", messages=user("hi"))
    assert caught.value.status_code == 404
    assert caught.value.body["code"] == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="auto/nope", messages=user("hi"))


def test_sdk_not_found_for_a_stream(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no/such-model", messages=user("hi"), stream=True)


def test_sdk_schema_errors_name_the_param(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="auto", messages=[
            {"role": "user", "content": [{"type": "input_audio",
                                          "input_audio": {"data": "AA", "format": "flac"}}]}])
    assert caught.value.body["param"] == "messages[0].content[0].input_audio.format"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="auto", messages=user("hi"), n=0)
    assert caught.value.body["param"] == "n"


def test_what_the_messages_api_cannot_express_is_a_400(serve: Serve, up: FakeUpstream) -> None:
    """A concrete Anthropic-protocol model: what the translation cannot express is the caller's
    400 naming the param, before any call (the upstream never sees it)."""
    gw = serve({"tiers": {"simple": {"model": "anthropic-ish/claude", "fallbacks": []}}})
    model = "anthropic-ish/claude"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"messages": [{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}}]}]},
         "messages[0].content[0]"),
        ({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AA"}}]}]},
         "messages[0].content[0].image_url.url"),
        ({"messages": [{"role": "user", "content": [
            {"type": "file", "file": {"file_id": "file-1"}}]}]}, "messages[0].content[0].file"),
        ({"tools": [{"type": "custom", "custom": {"name": "grep"}}]}, "tools[0].type"),
    ]
    with gw.http() as http:
        for extra, param in cases:
            body = {"model": model, "messages": user("hi"), **extra}
            error = check(http.post(CHAT, json=body), 400, param=param)
            assert "Anthropic" in error["message"]


def test_sdk_unknown_plugin(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="auto", messages=user("hi"),
                                       extra_body={"plugins": [{"id": "web-search"}]})
    assert caught.value.body["param"] == "plugins[0].id"
    assert "web-search" in caught.value.message


@pytest.mark.asyncio
async def test_async_sdk_errors(gw: GatewayServer) -> None:
    async with gw.aclient() as client:
        with pytest.raises(openai.BadRequestError):
            await client.chat.completions.create(model="auto", messages=[])
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(model="nope", messages=user("hi"), stream=True)
