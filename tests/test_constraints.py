"""Tests of the constraints applied before routing: allowed/excluded wildcards, context window,
max output tokens, required capabilities, and the request features they read."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from llmroute.catalog import ModelSpec, resolve_model
from llmroute.constraints import eligible, exclusion_reason, matches
from llmroute.settings import ModelConfig
from llmroute.types import IMAGE_TOKENS, RouteRequest

ALL = frozenset({"tools", "vision", "json"})


def model(name: str, provider: str = "acme", *, context_window: int | None = None,
          max_output: int | None = None, caps: frozenset[str] = ALL) -> ModelSpec:
    return ModelSpec(name, provider, Decimal(1), Decimal(2), context_window=context_window,
                     max_output_tokens=max_output, capabilities=caps)


def request(tokens: int = 10, max_tokens: int | None = None, **fields: Any) -> RouteRequest:
    return RouteRequest(messages=(), user_text="", last_user_text="", input_tokens=tokens,
                        max_output_tokens=max_tokens, **fields)


HAIKU = model("anthropic/claude-haiku-4-5", "anthropic")
SONNET = model("anthropic/claude-sonnet-4-5", "anthropic")
MINI = model("openai/gpt-4o-mini", "openai")
BARE_MINI = model("gpt-4o-mini", "openai")


# --- wildcards ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("spec", "pattern", "expected"),
    [
        (HAIKU, "anthropic/*", True),
        (MINI, "anthropic/*", False),
        (MINI, "openai/gpt-4o-mini", True),
        (MINI, "openai/gpt-4o", False),  # exact names are not prefixes
        (MINI, "*mini*", True),
        (MINI, "openai/gpt-4o-*", True),
        (MINI, "*", True),
        (BARE_MINI, "openai/*", True),  # a bare name is matched as provider/bare
        (BARE_MINI, "openai/gpt-4o-mini", True),
        (BARE_MINI, "gpt-4o-mini", True),
        (BARE_MINI, "anthropic/*", False),
        (HAIKU, "anthropic/claude-?aiku-4-5", True),
    ],
)
def test_matches(spec: ModelSpec, pattern: str, expected: bool) -> None:
    assert matches(spec, [pattern]) is expected


def test_matches_any_of_several_patterns_and_none_of_an_empty_list() -> None:
    assert matches(MINI, ["anthropic/*", "openai/*"])
    assert not matches(MINI, [])


def test_provider_of_a_prefix_alias_is_matched_by_its_real_provider() -> None:
    spec = resolve_model("azure_openai/gpt-4o-mini", None)
    assert spec is not None
    assert matches(spec, ["azure_openai/*"])
    assert matches(spec, ["azure/*"])


# --- allowed / excluded ----------------------------------------------------------------------------

def test_no_lists_means_everything_is_eligible() -> None:
    found = eligible([HAIKU, SONNET, MINI], request(), ("simple",))
    assert found.names() == (HAIKU.name, SONNET.name, MINI.name)
    assert found.excluded == {}


def test_allowed_models_keep_only_matches() -> None:
    found = eligible([HAIKU, SONNET, MINI], request(allowed_models=("anthropic/*",)), ())
    assert found.names() == (HAIKU.name, SONNET.name)
    assert found.excluded == {MINI.name: "not in allowed_models"}


def test_exclusions_win_over_allowances() -> None:
    req = request(allowed_models=("anthropic/*",), excluded_models=("anthropic/claude-haiku-4-5",))
    found = eligible([HAIKU, SONNET, MINI], req, ())
    assert found.names() == (SONNET.name,)
    assert found.excluded == {
        HAIKU.name: "excluded by excluded_models",
        MINI.name: "not in allowed_models",
    }
    same = request(allowed_models=(MINI.name,), excluded_models=(MINI.name,))
    assert exclusion_reason(MINI, same) == "excluded by excluded_models"


def test_excluded_wildcard_over_the_whole_provider() -> None:
    found = eligible([HAIKU, SONNET, MINI], request(excluded_models=("anthropic/*",)), ())
    assert found.names() == (MINI.name,)
    assert set(found.excluded) == {HAIKU.name, SONNET.name}


def test_candidates_helpers() -> None:
    found = eligible([HAIKU, MINI], request(excluded_models=("openai/*",)), ("a", "b"))
    assert HAIKU.name in found
    assert MINI.name not in found
    assert found.tiers == ("a", "b")
    assert found.models == (HAIKU,)


# --- context window and max output -----------------------------------------------------------------

def test_context_window_counts_prompt_plus_max_tokens() -> None:
    small = model("acme/small", context_window=1000)
    assert exclusion_reason(small, request(900, 100)) is None  # exactly fits
    reason = exclusion_reason(small, request(900, 101))
    assert reason == "context window 1000 < ~900 prompt tokens + 101 max_tokens"
    assert exclusion_reason(small, request(1000)) is None
    assert exclusion_reason(small, request(1001)) == "context window 1000 < ~1001 prompt tokens"


def test_unknown_context_window_never_excludes() -> None:
    assert exclusion_reason(model("acme/x"), request(10_000_000, 1000)) is None


def test_max_output_tokens() -> None:
    capped = model("acme/capped", max_output=500)
    assert exclusion_reason(capped, request(10, 500)) is None
    assert exclusion_reason(capped, request(10, 501)) == (
        "max_tokens 501 exceeds its max output of 500")
    assert exclusion_reason(capped, request(10)) is None


def test_bundled_limits_exclude_a_long_prompt() -> None:
    mini = resolve_model("openai/gpt-4o-mini", None)
    sonnet = resolve_model("anthropic/claude-sonnet-4-5", None)
    assert mini is not None and sonnet is not None
    long_prompt = RouteRequest.from_prompt("word " * 120_000)  # 600k chars ≈ 150k tokens
    found = eligible([mini, sonnet], long_prompt, ())
    assert found.names() == (sonnet.name,)
    assert found.excluded[mini.name].startswith("context window 128000 < ~")
    # max_tokens beyond gpt-4o-mini's 16384 output
    found = eligible([mini, sonnet], RouteRequest.from_prompt("hi", max_output_tokens=20_000), ())
    assert found.names() == (sonnet.name,)


# --- capabilities -----------------------------------------------------------------------------------

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
IMAGE_MESSAGE = {
    "role": "user",
    "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ],
}


def test_required_capabilities_come_from_the_request() -> None:
    assert RouteRequest.from_prompt("hi").requires == frozenset()
    assert RouteRequest.from_prompt("hi", tools=TOOLS).requires == {"tools"}
    assert RouteRequest.from_messages([IMAGE_MESSAGE]).requires == {"vision"}
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}
    assert RouteRequest.from_prompt("hi", response_format=schema).requires == {"json"}


def test_model_lacking_a_capability_is_excluded() -> None:
    text_only = model("acme/text", caps=frozenset({"json"}))
    assert exclusion_reason(text_only, RouteRequest.from_prompt("hi")) is None
    assert exclusion_reason(text_only, RouteRequest.from_prompt("hi", tools=TOOLS)) == (
        "lacks capability: tools")
    assert exclusion_reason(text_only, RouteRequest.from_messages([IMAGE_MESSAGE])) == (
        "lacks capability: vision")
    both = RouteRequest.from_messages([IMAGE_MESSAGE], tools=TOOLS)
    assert exclusion_reason(text_only, both) == "lacks capability: tools, vision"


def test_json_schema_needs_a_json_capable_model() -> None:
    no_json = model("acme/nojson", caps=frozenset({"tools", "vision"}))
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}
    req = RouteRequest.from_prompt("give me json", response_format=schema)
    assert exclusion_reason(no_json, req) == "lacks capability: json"


def test_bundled_capabilities_are_enforced() -> None:
    command = resolve_model("command", None)  # a cohere model without tools or vision flags
    mini = resolve_model("openai/gpt-4o-mini", None)
    assert command is not None and mini is not None
    found = eligible([command, mini], RouteRequest.from_messages([IMAGE_MESSAGE]), ())
    assert found.names() == (mini.name,)
    assert found.excluded == {"command": "lacks capability: vision"}


def test_config_capabilities_override_the_snapshot() -> None:
    mini = resolve_model("openai/gpt-4o-mini", ModelConfig(capabilities=("json",)))
    assert mini is not None
    assert exclusion_reason(mini, RouteRequest.from_prompt("x", tools=TOOLS)) == (
        "lacks capability: tools")


# --- request features the constraints read ---------------------------------------------------------

def test_prompt_token_estimate() -> None:
    # 12 chars → 3 tokens, + 4 per message + 3 for the reply priming
    assert RouteRequest.from_prompt("hello world!").input_tokens == 3 + 4 + 3
    # 13 chars round up to 4 tokens
    assert RouteRequest.from_prompt("hello world!!").input_tokens == 4 + 4 + 3


def test_images_add_a_tile_budget_and_are_counted() -> None:
    req = RouteRequest.from_messages([IMAGE_MESSAGE])
    text_tokens = -(-len("What is in this picture?") // 4)
    assert req.images == 1
    assert req.input_tokens == text_tokens + 4 + 3 + IMAGE_TOKENS
    assert req.last_user_text == "What is in this picture?"


def test_tools_add_their_schema_to_the_estimate() -> None:
    plain = RouteRequest.from_prompt("hi")
    with_tools = RouteRequest.from_prompt("hi", tools=TOOLS)
    assert with_tools.has_tools and not plain.has_tools
    assert with_tools.input_tokens > plain.input_tokens


def test_attachments_are_counted() -> None:
    msg = {"role": "user", "content": [{"type": "text", "text": "summarise"},
                                       {"type": "file", "file": {"file_id": "f1"}},
                                       {"type": "input_audio", "input_audio": {}}]}
    req = RouteRequest.from_messages([msg])
    assert req.attachments == 2
    assert req.images == 0
