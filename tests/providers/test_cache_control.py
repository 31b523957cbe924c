"""`cache_control` through the Anthropic translation (system, user, assistant and tool-result
blocks, message-level marks, tools), the provider's limits (4 breakpoints, TTL order, the
mark's shape) and stripping for OpenAI-compatible upstreams."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from llmroute.providers.anthropic_errors import WireError
from llmroute.providers.anthropic_wire import to_anthropic_request
from llmroute.providers.cache_control import breakpoints, strip_cache_control
from llmroute.providers.openai_compat import passes_cache_control
from llmroute.settings import ProviderConfig

EPH: dict[str, Any] = {"type": "ephemeral"}
HOUR: dict[str, Any] = {"type": "ephemeral", "ttl": "1h"}


def conversation() -> dict[str, Any]:
    """System, user (text + image), assistant with a tool call, its result, a new user turn;
    marks on a system part, a tool, an assistant message and a tool message."""
    return {
        "model": "m",
        "tools": [{"type": "function", "function": {"name": "a"}},
                  {"type": "function", "function": {"name": "b"}, "cache_control": HOUR}],
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "rules", "cache_control": HOUR},
                                           {"type": "text", "text": "more rules"}]},
            {"role": "user", "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
            {"role": "assistant", "content": "calling", "cache_control": EPH,
             "tool_calls": [{"id": "c1", "type": "function",
                             "function": {"name": "a", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "42", "cache_control": EPH},
            {"role": "user", "content": "thanks"},
        ],
    }


def test_marks_land_on_the_blocks_they_mark() -> None:
    body = conversation()
    original = copy.deepcopy(body)
    out = to_anthropic_request(body, "claude")
    assert out["tools"][0] == {"name": "a", "input_schema": {"type": "object", "properties": {}}}
    assert out["tools"][1]["cache_control"] == HOUR
    # a marked system prompt goes as blocks, the mark on the part that had it
    assert out["system"] == [{"type": "text", "text": "rules", "cache_control": HOUR},
                             {"type": "text", "text": "more rules"}]
    user, assistant, results = out["messages"]
    assert all("cache_control" not in b for b in user["content"])
    # a message-level mark lands on the message's last block (here the tool_use)
    assert [b.get("cache_control") for b in assistant["content"]] == [None, EPH]
    assert results["content"][0] == {"type": "tool_result", "tool_use_id": "c1", "content": "42",
                                     "cache_control": EPH}
    assert "cache_control" not in results["content"][1]
    assert body == original  # the caller's request is not changed


def test_part_marks_on_user_images_and_tool_result_parts() -> None:
    body = {"messages": [
        {"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://x/y.png"}, "cache_control": HOUR},
            {"type": "text", "text": "what is it", "cache_control": EPH}]},
        {"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
                                              "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c",
         "content": [{"type": "text", "text": "out", "cache_control": EPH}]}]}
    out = to_anthropic_request(body, "claude")
    image, text = out["messages"][0]["content"]
    assert image["cache_control"] == HOUR and image["type"] == "image"
    assert text == {"type": "text", "text": "what is it", "cache_control": EPH}
    result = out["messages"][2]["content"][0]
    assert result["cache_control"] == EPH
    assert result["content"] == [{"type": "text", "text": "out"}]


def test_an_unmarked_system_prompt_stays_one_string() -> None:
    body = {"messages": [{"role": "system", "content": "a"}, {"role": "system", "content": "b"},
                         {"role": "user", "content": "hi", "cache_control": EPH}]}
    out = to_anthropic_request(body, "claude")
    assert out["system"] == "a\n\nb"
    assert out["messages"][0]["content"] == [{"type": "text", "text": "hi", "cache_control": EPH}]


def five_marks() -> dict[str, Any]:
    body = conversation()
    body["messages"][4]["cache_control"] = EPH      # 4 marks before: tool, system, assistant, tool
    return body


def test_at_most_four_breakpoints_and_the_fifth_is_named() -> None:
    with pytest.raises(WireError) as caught:
        to_anthropic_request(five_marks(), "claude")
    assert caught.value.param == "messages[4].cache_control"
    assert "at most 4" in caught.value.message


def test_breakpoints_are_counted_in_cache_order_and_once_per_block() -> None:
    body = conversation()
    # a message mark and its last part's mark are one block; system messages count before others
    body["messages"].append({"role": "system", "content": [{"type": "text", "text": "late",
                                                            "cache_control": HOUR}],
                             "cache_control": HOUR})
    assert [p for p, _ in breakpoints(body)] == [
        "tools[1].cache_control", "messages[0].content[0].cache_control",
        "messages[5].content[0].cache_control", "messages[2].cache_control",
        "messages[3].cache_control"]


def test_a_1h_mark_after_a_5m_one_is_refused() -> None:
    body = conversation()
    body["tools"][1]["cache_control"] = EPH
    with pytest.raises(WireError) as caught:
        to_anthropic_request(body, "claude")
    assert caught.value.param == "messages[0].content[0].cache_control"


@pytest.mark.parametrize(("mark", "param"), [
    ({"type": "persistent"}, "messages[0].cache_control.type"),
    ("yes", "messages[0].cache_control.type"),
    ({"type": "ephemeral", "ttl": "2h"}, "messages[0].cache_control.ttl"),
])
def test_malformed_marks_are_refused_with_their_param(mark: Any, param: str) -> None:
    body = {"messages": [{"role": "user", "content": "hi", "cache_control": mark}]}
    with pytest.raises(WireError) as caught:
        to_anthropic_request(body, "claude")
    assert caught.value.param == param


def test_strip_removes_every_mark_without_touching_the_caller() -> None:
    body = conversation()
    original = copy.deepcopy(body)
    stripped = strip_cache_control(body)
    assert "cache_control" not in repr(stripped)
    assert body == original
    assert stripped["messages"][1] is body["messages"][1]  # unmarked messages are not copied
    unmarked = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert strip_cache_control(unmarked) is unmarked


@pytest.mark.parametrize(("setting", "url", "passes"), [
    ("auto", "https://openrouter.ai/api/v1", True),
    ("auto", "https://api.openai.com/v1", False),
    ("auto", "https://evil-openrouter.ai.example/v1", False),
    ("pass", "http://127.0.0.1:8000/v1", True),
    ("strip", "https://openrouter.ai/api/v1", False),
])
def test_which_openai_compatible_upstreams_get_the_marks(setting: str, url: str,
                                                         passes: bool) -> None:
    config = ProviderConfig(type="openai", base_url=url, cache_control=setting)
    assert passes_cache_control(config) is passes
