"""The chat body's fast path (chat_quick.py, issue 17) against the full validation
(`chat.checked_request`: pydantic's schema and the checks across fields): on random bodies, valid
and invalid, `chat_request` gives the same request or the same error (status, type, message, param,
the error body byte for byte) as the full validation, and the fast path vouches only for bodies the
full validation accepts."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmroute.chat import ChatRequest, chat_request, checked_request
from llmroute.chat_quick import certain
from llmroute.errors import InvalidRequestError

#: Values at and around the schema's limits, of every JSON type, plus what Python callers pass.
EDGE_VALUES: list[Any] = [
    None, True, False, 0, 1, -1, 2, 3, 4, 20, 21, 128, 129, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, -2.0,
    -2.5, -0.0, 2**63 - 1, 2**63, -2**63, -2**63 - 1, 2**70, float("inf"), float("nan"), "", "x",
    "auto", "text", "function", "call_1", "\ud800", [], {}, [""], ["a", "b", "c", "d"],
    ["a"] * 5, [1], {"a": "b"}, {"a": 1}, {1: "a"}, ("a",), {"include_usage": True},
    {"include_usage": 1}, {"include_obfuscation": False, "x": 1}, {"type": "ephemeral"},
    {"type": "ephemeral", "ttl": "1h"}, {"type": "ephemeral", "ttl": "2h"},
    [{"type": "text", "text": "a"}], [{"type": "refusal", "refusal": "a"}], "a b", "a\n", "é",
    "x" * 64, "x" * 65, "none", "required", {"name": "f"}, {"type": "object"}]
EDGES = st.sampled_from(EDGE_VALUES)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=3),
    max_leaves=6)
ANY = EDGES | JSON


def obj(required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]
        ) -> st.SearchStrategy[dict[str, Any]]:
    """A valid object: its required fields and some optional ones."""
    return st.fixed_dictionaries(required, optional=optional)


TEXT = st.text(max_size=6)
TEXT_PART = obj({"type": st.just("text"), "text": TEXT},
                {"cache_control": st.none() | st.just({"type": "ephemeral"})})
REFUSAL_PART = obj({"type": st.just("refusal"), "refusal": TEXT}, {})
IMAGE_PART = obj({"type": st.just("image_url"), "image_url": st.just({"url": "https://x/a.png"})},
                 {})
TEXT_CONTENT = TEXT | st.lists(TEXT_PART, min_size=1, max_size=3)
CACHE = st.none() | st.just({"type": "ephemeral"})
CALL = obj({"id": st.sampled_from(["call_1", "call_2"]), "type": st.just("function"),
            "function": obj({"name": TEXT, "arguments": TEXT}, {})}, {})
ASSISTANT = obj({"role": st.just("assistant")}, {
    "content": st.none() | TEXT | st.lists(TEXT_PART | REFUSAL_PART, min_size=1, max_size=3),
    "refusal": st.none() | TEXT, "name": TEXT, "tool_calls": st.lists(CALL, max_size=2),
    "reasoning_content": st.none() | TEXT, "audio": st.none(), "function_call": st.none(),
    "thinking_blocks": st.none(), "cache_control": CACHE})
MESSAGE = st.one_of(
    obj({"role": st.sampled_from(["system", "developer"]), "content": TEXT_CONTENT},
        {"name": TEXT, "cache_control": CACHE}),
    obj({"role": st.just("user"),
         "content": TEXT | st.lists(TEXT_PART | IMAGE_PART, min_size=1, max_size=3)},
        {"name": TEXT, "cache_control": CACHE}),
    ASSISTANT,
    obj({"role": st.just("tool"), "content": TEXT_CONTENT,
         "tool_call_id": st.sampled_from(["call_1", "call_2"])}, {"cache_control": CACHE}),
)
TOOL = obj({"type": st.just("function"), "function": obj(
    {"name": st.sampled_from(["f", "lookup_2", "a-b", "x" * 64])},
    {"description": TEXT, "parameters": st.just({"type": "object", "properties": {}}),
     "strict": st.none() | st.booleans()})}, {"cache_control": CACHE})
VALID = obj(
    {"model": st.sampled_from(["auto", "gpt-4o-mini", "auto/cheap"]),
     "messages": st.lists(MESSAGE, min_size=1, max_size=5)},
    {"stream": st.booleans() | st.none(),
     "stream_options": st.none() | st.fixed_dictionaries(
         {}, optional={"include_usage": st.booleans(), "include_obfuscation": st.booleans()}),
     "max_tokens": st.integers(1, 10**6) | st.none(),
     "max_completion_tokens": st.integers(1, 10**6) | st.none(),
     "n": st.integers(1, 128), "temperature": st.floats(0, 2) | st.integers(0, 2),
     "top_p": st.floats(0, 1), "frequency_penalty": st.floats(-2, 2),
     "presence_penalty": st.floats(-2, 2), "logprobs": st.booleans(),
     "top_logprobs": st.integers(0, 20), "seed": st.integers(-2**63, 2**63 - 1),
     "stop": st.none() | TEXT | st.lists(TEXT, max_size=4), "parallel_tool_calls": st.booleans(),
     "user": st.none() | TEXT, "metadata": st.dictionaries(TEXT, TEXT, max_size=2),
     "store": st.booleans(), "reasoning_effort": st.sampled_from(["low", "high", "none", ""]),
     "service_tier": TEXT, "verbosity": TEXT, "safety_identifier": TEXT,
     "prompt_cache_key": TEXT, "tools": st.lists(TOOL, max_size=2),
     "tool_choice": st.sampled_from(["none", "auto", "required"]),
     "plugins": st.just([{"id": "auto-router"}]), "models": st.just(["a", "b"]),
     "thinking": st.just({"type": "disabled"}), "future_field": JSON})


def _places(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a body: the paths to its containers' members."""
    out = [path]
    if isinstance(value, dict):
        for key, inner in value.items():
            out += _places(inner, (*path, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            out += _places(inner, (*path, i))
    return out


@st.composite
def bodies(draw: st.DrawFn) -> Any:
    """A valid body with up to three changes: a value replaced by an edge or arbitrary one, a
    key dropped, an unknown or schema key added."""
    data = copy.deepcopy(draw(VALID))  # st.just values are shared: never changed in place
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(_places(data)))
        if not path:
            continue
        *parents, last = path
        holder = data
        for part in parents:
            holder = holder[part]
        action = draw(st.sampled_from(["replace", "replace", "drop", "add"]))
        if action == "replace":
            holder[last] = copy.deepcopy(draw(ANY))
        elif action == "drop" and isinstance(holder, dict):
            del holder[last]
        elif isinstance(holder[last], dict):
            key = draw(st.sampled_from(["role", "content", "type", "text", "name", "refusal",
                                        "tool_calls", "tool_call_id", "id", "function",
                                        "cache_control", "audio", "x"]))
            holder[last][key] = copy.deepcopy(draw(ANY))
    return data


BODY = bodies()


def outcome(data: Any, *, quick: bool, max_messages: int | None) -> tuple[Any, ...]:
    """What a path makes of `data`: the request, or the error with its body as bytes."""
    path = chat_request if quick else checked_request
    try:
        req = path(data, max_messages=max_messages)
    except InvalidRequestError as exc:
        return ("error", exc.status, exc.param, exc.message, orjson.dumps(exc.to_dict()))
    return ("request", req)


@settings(max_examples=2000, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(BODY, st.none() | st.integers(1, 4))
def test_the_fast_path_gives_what_the_full_validation_gives(data: Any, most: int | None) -> None:
    full = outcome(data, quick=False, max_messages=most)
    assert outcome(data, quick=True, max_messages=most) == full
    if certain(data, most):  # vouched for: the full validation accepts it
        assert full[0] == "request"


USER = {"role": "user", "content": "What is 2+2?"}
TEXT_PART_C = {"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}}
CALLED = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
#: One body with every field the fast path checks, and each place in it one can change.
FULL = {
    "model": "auto", "stream": True, "stream_options": {"include_usage": True},
    "max_tokens": 5, "max_completion_tokens": 5, "n": 1, "temperature": 1, "top_p": 1,
    "frequency_penalty": 0, "presence_penalty": 0, "logprobs": True, "top_logprobs": 1, "seed": 1,
    "stop": "x", "parallel_tool_calls": True, "user": "u", "metadata": {}, "store": True,
    "reasoning_effort": "low", "service_tier": "auto", "verbosity": "low",
    "safety_identifier": "s", "prompt_cache_key": "k", "tool_choice": "required",
    "tools": [{"type": "function", "cache_control": None, "function": {
        "name": "f", "description": "d", "parameters": {"type": "object"}, "strict": True}}],
    "messages": [
        {"role": "system", "content": "s", "name": "n", "cache_control": None},
        {"role": "developer", "content": [TEXT_PART_C]},
        {"role": "user", "content": [{"type": "text", "text": "a", "cache_control": None}],
         "name": "n"},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "r"}, TEXT_PART_C],
         "refusal": "r", "name": "n", "tool_calls": [CALLED], "reasoning_content": "t",
         "audio": None, "function_call": None, "thinking_blocks": None, "cache_control": None},
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        {"role": "assistant", "content": "a"}, USER]}


def _edited(path: tuple[Any, ...], value: Any) -> Any:
    data = copy.deepcopy(FULL)
    holder = data
    for part in path[:-1]:
        holder = holder[part]
    holder[path[-1]] = copy.deepcopy(value)
    return data


PLACES = [p for p in _places(FULL) if p and p[-1] != "messages"] + [
    ("stream_options", "include_obfuscation"), ("messages", 1, "content", 0, "cache_control", "ttl"),
    ("messages", 0, "content"), ("messages", 3, "content"), ("messages", 6, "name"),
    ("messages", 5, "tool_calls"), ("messages", 4, "name"), ("messages", 4, "tool_calls"),
    ("tools", 0, "function", "strict"), ("tools", 0, "cache_control")]


@pytest.mark.parametrize("path", PLACES, ids=str)
def test_every_edge_value_at_every_place_is_judged_the_same(path: tuple[Any, ...]) -> None:
    assert certain(FULL, None)
    for value in EDGE_VALUES:
        data = _edited(path, value)
        for most in (None, 3):
            assert outcome(data, quick=True, max_messages=most) == outcome(
                data, quick=False, max_messages=most), (path, value)


COMMON = [
    {"model": "auto", "messages": [USER], "max_tokens": 32},
    {"model": "gpt-4o-mini", "messages": [USER], "stream": True,
     "stream_options": {"include_usage": True}, "temperature": 0.2, "user": "u1"},
    {"model": "auto", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Look it up"}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "lookup", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        {"role": "assistant", "content": "It is 42."}, USER],
     "max_completion_tokens": 100, "seed": 7, "stop": ["\n"], "metadata": {"a": "b"},
     "future_field": {"kept": True}},
    {"model": "auto", "messages": [USER], "tool_choice": "auto", "parallel_tool_calls": False,
     "tools": [{"type": "function", "function": {
         "name": "get_weather", "description": "The weather.", "strict": True,
         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]},
]


@pytest.mark.parametrize("data", COMMON)
def test_common_bodies_take_the_fast_path_and_are_forwarded_as_sent(data: dict[str, Any]) -> None:
    assert certain(data, None)
    req = chat_request(data)
    assert isinstance(req, ChatRequest) and req == checked_request(data)
    assert req.body == data and req.body is not data
    # built as its own __dict__: the fields in declaration order, and no __post_init__ skipped
    assert list(vars(req)) == [f.name for f in dataclasses.fields(ChatRequest)]
    assert not hasattr(ChatRequest, "__post_init__")
    assert pickle.loads(pickle.dumps(req)) == req and repr(req) == repr(checked_request(data))


@pytest.mark.parametrize("data", [
    {"model": "auto", "messages": [USER], "response_format": None},  # a field left alone
    {"model": "auto", "messages": [USER], "tool_choice": "required"},
    {"model": "auto", "messages": [USER], "tools": [{"type": "custom", "custom": {"name": "c"}}]},
    {"model": "auto", "messages": [USER], "tool_choice": {"type": "function",
                                                           "function": {"name": "f"}}},
    {"model": "auto", "messages": [USER], "plugins": None},
    {"model": "auto", "messages": [{"role": "tool", "tool_call_id": "x", "content": "1"}]},
    {"model": "auto", "messages": [{"role": "assistant"}]},
    {"model": "", "messages": [USER]},
    {"model": "auto", "messages": [USER], "top_logprobs": 2},
    {"model": "auto", "messages": [USER], "stream_options": {"include_usage": True}},
    {"model": "auto", "messages": [USER], "temperature": True},
    {"model": "auto", "messages": [USER, USER, USER]},  # over max_messages=2
])
def test_what_the_fast_path_is_not_sure_of_goes_to_the_full_validation(
        data: dict[str, Any]) -> None:
    assert not certain(data, 2)
