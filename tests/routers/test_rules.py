"""Tests of the rules router: every condition type, scopes, first match wins, the default tier, the
shipped default table, and a user table replacing it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from helpers import default_settings, load_yaml, no_candidates
from llmroute.engine import Engine
from llmroute.routers.base import Verdict
from llmroute.routers.rules import RulesRouter, words_of
from llmroute.settings import RuleConfig
from llmroute.types import RouteRequest

TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {}}}]


def rule(name: str = "r", tier: str = "complex", **conditions: Any) -> RuleConfig:
    return RuleConfig(name=name, tier=tier, **conditions)


def route(rules: list[RuleConfig], request: RouteRequest | str, default: str = "medium"
          ) -> Verdict:
    req = RouteRequest.from_prompt(request) if isinstance(request, str) else request
    return RulesRouter(tuple(rules), default, 0.4).decide(req, no_candidates())


def matched(condition: RuleConfig, request: RouteRequest | str) -> bool:
    """Whether the one-rule table fires (tier complex) rather than defaulting (medium)."""
    return route([condition], request).tier == "complex"


# --- whole-word / phrase keyword search ---------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "word", "expected"),
    [
        ("please fix my code", "code", True),
        ("code: first thing", "code", True),
        ("(code)", "code", True),
        ("my code's broken", "code", True),
        ("decode this string", "code", False),
        ("codes and codecs", "code", False),
        ("decode my code", "code", True),  # a later whole-word occurrence still counts
        ("snake_code", "code", False),  # underscore is a word character
        ("i write c++ daily", "c++", True),
        ("c++", "c++", True),
        ("abc++ is not a language", "c++", False),
        ("is C# hard?", "c#", True),
        ("got a stack trace here", "stack trace", True),
        ("got a stack-trace here", "stack trace", True),
        ("stack\ntrace", "stack trace", True),
        ("stacktrace", "stack trace", False),
        ("a haystack trace", "stack trace", False),
        ("trace the stack", "stack trace", False),
        ("write a unit test", "unit test", True),
        ("", "code", False),
        # non-ASCII punctuation separates words too
        ("fix my code…", "code", True),
        ("my code’s broken", "code", True),
        ("«code»", "code", True),
        ("naïve code", "naïve", True),
    ],
)
def test_keyword_whole_words_and_phrases(text: str, word: str, expected: bool) -> None:
    assert matched(rule(keywords=(word,)), text) is expected


# --- each condition type ---------------------------------------------------------------------------

def test_words_of() -> None:
    assert words_of("Fix THIS: c++/C#, snake_case; stack-trace!") == [
        "fix", "this", "c++", "c#", "snake_case", "stack", "trace"]
    assert words_of("  ") == []


def test_keywords_any_case_insensitive_whole_words() -> None:
    cond = rule(keywords=("code", "stack trace", "C++"))
    assert matched(cond, "Please review this CODE")
    assert matched(cond, "I got a Stack Trace")
    assert matched(cond, "how do templates work in c++?")
    assert not matched(cond, "Decode this base64")
    assert not matched(cond, "stacktrace")
    verdict = route([cond], "why does my code fail")
    assert verdict.reason == "rule 'r' matched (keyword 'code')"


def test_all_keywords() -> None:
    cond = rule(all_keywords=("prove", "theorem"))
    assert matched(cond, "Prove the following theorem")
    assert not matched(cond, "prove it")
    assert not matched(cond, "a theorem")


def test_regex_any_case_insensitive_on_the_raw_text() -> None:
    cond = rule(regex=(r"^translate\b", r"\d+\s*[*/]\s*\d+"))
    assert matched(cond, "TRANSLATE this into French")
    assert matched(cond, "what is 12 * 7?")
    assert not matched(cond, "please translate this")  # anchored at the start
    assert "regex /" in route([cond], "12/4").reason


def test_token_bounds() -> None:
    # the estimate is ceil(chars / 4) of the scoped text
    at_least = rule(min_tokens=10)
    assert matched(at_least, "x" * 40)  # 10 tokens
    assert not matched(at_least, "x" * 36)  # 9 tokens
    at_most = rule(max_tokens=10)
    assert matched(at_most, "x" * 40)
    assert not matched(at_most, "x" * 41)  # 11 tokens
    between = rule(min_tokens=2, max_tokens=3)
    assert [matched(between, "x" * n) for n in (4, 5, 12, 13)] == [False, True, True, False]


def test_word_bounds() -> None:
    at_most = rule(max_words=3)
    assert matched(at_most, "one two three")
    assert matched(at_most, "  one   two\nthree  ")
    assert not matched(at_most, "one two three four")
    assert not matched(at_most, "word " * 10_000)
    at_least = rule(min_words=3)
    assert not matched(at_least, "one two")
    assert matched(at_least, "one two three")
    assert matched(at_least, "word " * 10_000)
    between = rule(min_words=2, max_words=3)
    assert [matched(between, " ".join(["w"] * n)) for n in (1, 2, 3, 4)] == [
        False, True, True, False]
    assert matched(rule(max_words=0), "")


def test_has_code_fence() -> None:
    fence = rule(has_code=True)
    assert matched(fence, "Why does this fail?\n```python\nprint(1/0)\n```")
    assert not matched(fence, "print(1/0) fails, why?")
    assert matched(rule(has_code=False), "no fence here")
    assert not matched(rule(has_code=False), "```x```")


def test_has_tools() -> None:
    assert matched(rule(has_tools=True), RouteRequest.from_prompt("weather?", tools=TOOLS))
    assert not matched(rule(has_tools=True), "weather?")
    assert matched(rule(has_tools=False), "weather?")


def test_has_images() -> None:
    msg = {"role": "user", "content": [{"type": "text", "text": "what is this"},
                                       {"type": "image_url", "image_url": {"url": "x"}}]}
    assert matched(rule(has_images=True), RouteRequest.from_messages([msg]))
    assert not matched(rule(has_images=True), "what is this")


def test_has_attachments() -> None:
    msg = {"role": "user", "content": [{"type": "text", "text": "summarise"},
                                       {"type": "file", "file": {"file_id": "f"}}]}
    assert matched(rule(has_attachments=True), RouteRequest.from_messages([msg]))
    assert not matched(rule(has_attachments=True), "summarise")
    assert matched(rule(has_attachments=False), "summarise")


def test_scope_last_user_versus_all_user_messages() -> None:
    conversation = RouteRequest.from_messages([
        {"role": "system", "content": "You help with code"},
        {"role": "user", "content": "Write a python function to sort a list"},
        {"role": "assistant", "content": "Here is the function ..."},
        {"role": "user", "content": "thanks!"},
    ])
    assert not matched(rule(keywords=("python",)), conversation)
    assert matched(rule(keywords=("python",), scope="user"), conversation)
    # the system and assistant messages are never in scope
    assert not matched(rule(keywords=("help",), scope="user"), conversation)
    assert matched(rule(max_words=1), conversation)
    assert not matched(rule(max_words=1, scope="user"), conversation)


# --- table semantics -------------------------------------------------------------------------------

def test_all_conditions_of_a_rule_must_hold() -> None:
    cond = rule(keywords=("code",), max_words=3)
    assert matched(cond, "review my code")
    assert not matched(cond, "please review all of my code today")
    assert not matched(cond, "hello")
    verdict = route([cond], "review my code")
    assert verdict.reason == "rule 'r' matched (3 words, keyword 'code')"


def test_first_match_wins() -> None:
    table = [rule("first", "simple", keywords=("hello",), confidence=0.6),
             rule("second", "complex", keywords=("hello",), confidence=0.95)]
    verdict = route(table, "hello world")
    assert verdict.tier == "simple"
    assert verdict.confidence == 0.6
    assert "'first'" in verdict.reason
    assert route(table[::-1], "hello world").tier == "complex"


def test_no_match_gives_the_default_tier_and_confidence() -> None:
    verdict = route([rule(keywords=("zebra",))], "hello", default="simple")
    assert verdict.tier == "simple"
    assert verdict.confidence == 0.4
    assert verdict.reason == "no rule matched; default tier 'simple'"
    assert verdict.router == "rules"
    empty = RulesRouter((), "complex").decide(RouteRequest.from_prompt("x"), no_candidates())
    assert (empty.tier, empty.confidence) == ("complex", 0.5)


def test_rule_confidence_is_reported() -> None:
    assert route([rule(keywords=("x",))], "x").confidence == 0.8  # the default
    assert route([rule(keywords=("x",), confidence=0.99)], "x").confidence == 0.99


# --- the shipped default table ---------------------------------------------------------------------

def default_router() -> RulesRouter:
    return RulesRouter(default_settings().rules, "medium")


@pytest.mark.parametrize(
    ("prompt", "tier", "rule_name"),
    [
        ("Why does this crash?\n```\nx = [1][2]\n```", "complex", "code-block"),
        ("Fix this Python function", "complex", "code-words"),
        ("I keep getting a stack trace when I start the server, what could be wrong with it "
         "at all", "complex", "code-words"),
        ("how do I learn c++ quickly", "complex", "code-words"),
        ("Calculate the compound interest on 1000 dollars at 5 percent over ten years please",
         "medium", "reasoning-words"),
        ("Explain why the sky is blue, step by step, for a curious child of about seven years",
         "medium", "reasoning-words"),
        ("What's the capital of France?", "simple", "short"),
        ("hi", "simple", "short"),
    ],
)
def test_default_table_heuristics(prompt: str, tier: str, rule_name: str) -> None:
    verdict = default_router().decide(RouteRequest.from_prompt(prompt), no_candidates())
    assert verdict.tier == tier
    assert f"rule '{rule_name}'" in verdict.reason


def test_default_table_does_not_fire_code_on_decode_and_defaults_to_medium() -> None:
    prompt = "Can you decode this base64 string for me and tell me what it says in plain english"
    verdict = default_router().decide(RouteRequest.from_prompt(prompt), no_candidates())
    assert verdict.tier == "medium"
    assert verdict.reason.startswith("no rule matched")


def test_default_table_tools_before_short() -> None:
    verdict = default_router().decide(RouteRequest.from_prompt("weather?", tools=TOOLS),
                                      no_candidates())
    assert verdict.tier == "medium"
    assert "rule 'tool-use'" in verdict.reason


# --- a user table replaces the default entirely -----------------------------------------------------

def test_user_table_replaces_the_default_entirely(tmp_path: Path) -> None:
    settings = load_yaml(tmp_path, """
        rules:
          - {name: fruit, tier: complex, keywords: [banana]}
        policies:
          default: {router: rules, default_tier: simple}
    """)
    engine = Engine(settings)
    # the default table would have sent this to complex (code-words)
    code = asyncio.run(engine.decide("Fix this Python function please, it has a bug"))
    assert code.tier == "simple"
    assert "no rule matched" in code.reason
    assert asyncio.run(engine.decide("banana bread recipe")).tier == "complex"


def test_a_policy_may_carry_its_own_table(tmp_path: Path) -> None:
    settings = load_yaml(tmp_path, """
        policies:
          default: {router: rules}
          own: {router: rules, default_tier: medium,
                rules: [{name: greet, tier: complex, keywords: [hello]}]}
    """)
    engine = Engine(settings)
    assert asyncio.run(engine.decide("hello", policy="own")).tier == "complex"
    assert asyncio.run(engine.decide("hello")).tier == "simple"  # global table: short
    assert asyncio.run(engine.decide("Fix the python bug in my function now okay",
                                     policy="own")).tier == "medium"
