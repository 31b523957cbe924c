"""Automatic prompt-cache breakpoints: where they go (last tool, end of the system prompt, end
of the turns before the newest user turn), the minimum prefix, explicit marks left alone, and
the policy as the Anthropic adapter applies it per upstream model."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from llmroute.cache.breakpoints import AutoBreakpoints, place_breakpoints
from llmroute.cache.config import PromptCacheConfig
from llmroute.catalog import Catalog
from llmroute.config import check, load
from llmroute.deployments import Deployments
from llmroute.providers import AnthropicProvider

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


def test_the_config_section_is_checked_with_paths(tmp_path: Path) -> None:
    path = tmp_path / "llmroute.yaml"
    path.write_text("cache:\n  prompt:\n    auto_breakpoints: true\n    ttl: 2h\n"
                    "    places: [tools, nowhere]\n", encoding="utf-8")
    checked = check(path, environ={})
    assert checked.settings is None
    assert sorted(p.path for p in checked.errors) == ["cache.prompt.places[1]", "cache.prompt.ttl"]
    path.write_text("cache:\n  prompt: {auto_breakpoints: true, ttl: 1h, min_tokens: 2048}\n",
                    encoding="utf-8")
    settings = load(path, environ={})
    assert settings.cache.prompt == PromptCacheConfig(auto_breakpoints=True, ttl="1h",
                                                      min_tokens=2048)


def deployments_yaml(auto: bool) -> str:
    return f"""
providers:
  ant: {{type: anthropic, base_url: "http://127.0.0.1:9"}}
  oai: {{type: openai, base_url: "http://127.0.0.1:9/v1"}}
models:
  ant/sonnet: {{deployment: ant, upstream_name: sonnet-up, input_per_m: 3, output_per_m: 15}}
  ant/haiku: {{deployment: ant, upstream_name: haiku-up, input_per_m: 1, output_per_m: 5,
              cache_min_tokens: 4096}}
  oai/mini: {{deployment: oai, input_per_m: 1, output_per_m: 2}}
tiers:
  simple: {{model: oai/mini}}
  medium: {{model: oai/mini}}
  complex: {{model: ant/sonnet, fallbacks: [ant/haiku]}}
cache: {{prompt: {{auto_breakpoints: {str(auto).lower()}}}}}
"""


@pytest.mark.asyncio
async def test_each_anthropic_deployment_gets_the_policy_with_its_models_minimums(
        tmp_path: Path) -> None:
    path = tmp_path / "llmroute.yaml"
    for auto in (True, False):
        path.write_text(deployments_yaml(auto), encoding="utf-8")
        settings = load(path, environ={})
        deployments = Deployments.from_settings(settings, Catalog.from_settings(settings), {})
        try:
            ant, _ = deployments.get("ant/haiku")
            oai, _ = deployments.get("oai/mini")
            assert isinstance(ant, AnthropicProvider)
            assert deployments.get("ant/sonnet")[0] is ant
            if auto:
                # sonnet-up has no minimum in the catalog: the config's 1024 applies to it
                assert ant.breakpoints == AutoBreakpoints(settings.cache.prompt,
                                                          {"haiku-up": 4096})
            else:
                assert ant.breakpoints is None
            assert not hasattr(oai, "breakpoints")
        finally:
            await deployments.aclose()
