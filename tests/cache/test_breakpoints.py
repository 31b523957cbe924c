"""Automatic prompt-cache breakpoints: where they go (last tool, end of the system prompt, end
of the turns before the newest user turn), the minimum prefix, explicit marks left alone, and
the policy as the Anthropic adapter applies it per upstream model."""

from __future__ import annotations

import copy
from typing import Any

from llmroute.cache.breakpoints import AutoBreakpoints, place_breakpoints
from llmroute.cache.config import PromptCacheConfig

ON = PromptCacheConfig(auto_breakpoints=True)
EPH = {"type": "ephemeral"}


def payload(system_chars: int = 4200, turns: int = 3) -> dict[str, Any]:
    """A Messages request: one tool, a system prompt of `system_chars` characters, and
    alternating turns of 400 characters ending with a user turn."""
    roles = ["user", "assistant"] * turns
    messages = [{"role": role, "content": [{"type": "text", "text": role[0] * 400}]}
                for role in roles[: 2 * turns - 1]]
    return {"model": "claude", "max_tokens": 10,
            "tools": [{"name": "t", "input_schema": {"type": "object", "properties": {}}}],
            "system": "s" * system_chars, "messages": messages}


def marks(request: dict[str, Any]) -> list[str]:
    """Where `request` carries cache_control: tools[i], system[i], messages[i].content[j]."""
    found = [f"tools[{i}]" for i, t in enumerate(request.get("tools", ())) if "cache_control" in t]
    system = request.get("system")
    if isinstance(system, list):
        found += [f"system[{i}]" for i, b in enumerate(system) if "cache_control" in b]
    for i, message in enumerate(request["messages"]):
        content = message["content"]
        if isinstance(content, list):
            found += [f"messages[{i}].content[{j}]" for j, b in enumerate(content)
                      if "cache_control" in b]
    return found


def test_system_and_earlier_turns_are_marked_when_long_enough() -> None:
    request = payload()
    original = copy.deepcopy(request)
    out = place_breakpoints(request, 1024, ON)
    # the tool alone is far below 1024 tokens; with the system prompt (4200 chars) it is 1065;
    # the earlier turns end at messages[3], the assistant turn before the newest user turn
    assert marks(out) == ["system[0]", "messages[3].content[0]"]
    assert out["system"] == [{"type": "text", "text": "s" * 4200, "cache_control": EPH}]
    assert request == original  # a copy; the caller's payload is unchanged


def test_a_long_tool_list_is_marked_at_its_last_tool() -> None:
    request = payload()
    request["tools"] = [{"name": f"t{i}", "description": "d" * 2100,
                         "input_schema": {"type": "object"}} for i in range(2)]
    assert marks(place_breakpoints(request, 1024, ON)) == [
        "tools[1]", "system[0]", "messages[3].content[0]"]


def test_prefixes_below_the_minimum_are_not_marked() -> None:
    request = payload(system_chars=3000)
    # tool ~70 chars + system 3000 = ~767 tokens < 1024; with turns up to messages[3]: 1167
    assert marks(place_breakpoints(request, 1024, ON)) == ["messages[3].content[0]"]
    assert marks(place_breakpoints(request, 2048, ON)) == []
    assert place_breakpoints(request, 2048, ON) is request


def test_a_first_turn_has_no_earlier_turns() -> None:
    request = payload(turns=1)
    assert marks(place_breakpoints(request, 1024, ON)) == ["system[0]"]


def test_explicit_marks_are_left_alone() -> None:
    request = payload()
    request["messages"][0]["content"][0]["cache_control"] = EPH
    assert place_breakpoints(request, 1024, ON) is request


def test_places_and_ttl_are_configurable() -> None:
    config = PromptCacheConfig(auto_breakpoints=True, places=("history",), ttl="1h")
    out = place_breakpoints(payload(), 1024, config)
    assert marks(out) == ["messages[3].content[0]"]
    assert out["messages"][3]["content"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}


def test_each_upstream_model_has_its_own_minimum() -> None:
    policy = AutoBreakpoints(ON, {"haiku": 4096})
    request = payload()
    assert marks(policy.apply(request, "sonnet")) == ["system[0]", "messages[3].content[0]"]
    assert policy.apply(request, "haiku") is request  # ~1420 tokens < 4096
