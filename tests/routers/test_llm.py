"""Tests of the LLM-as-router: the call it asks for, robust label parsing, the default tier on
garbage / timeout / error, and the TTL + LRU cache of classifications (with an injected clock)."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from helpers import no_candidates
from llmroute.routers.base import Consult, Verdict
from llmroute.routers.llm import DEFAULT_PROMPT, LLMParams, LLMRouter, parse_label
from llmroute.types import RouteRequest

LABELS = {"SIMPLE": "simple", "MEDIUM": "medium", "COMPLEX": "complex"}


class Clock:
    """A hand-driven monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def router(clock: Clock | None = None, **params: Any) -> LLMRouter:
    return LLMRouter(LLMParams(model="openai/gpt-4o-mini", **params), clock=clock or Clock())


def ask(llm: LLMRouter, prompt: str) -> Verdict | Consult:
    return llm.decide(RouteRequest.from_prompt(prompt), no_candidates())


def classify(llm: LLMRouter, prompt: str, reply: str | None, error: str | None = None) -> Verdict:
    consult = ask(llm, prompt)
    assert isinstance(consult, Consult), "expected a consultation, got a cached verdict"
    verdict = consult.resume(reply, error)
    assert isinstance(verdict, Verdict)
    return verdict


def is_cached(llm: LLMRouter, prompt: str) -> bool:
    return isinstance(ask(llm, prompt), Verdict)


# --- parsing ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("reply", "label"),
    [
        ("COMPLEX", "COMPLEX"),
        ("complex", "COMPLEX"),
        ("Complex.", "COMPLEX"),
        ("  **MEDIUM**\n", "MEDIUM"),
        ("simple!", "SIMPLE"),
        ('"SIMPLE"', "SIMPLE"),
        ("Answer: SIMPLE", "SIMPLE"),
        ("The request is of medium difficulty.", "MEDIUM"),
        ("I'd say complex", "COMPLEX"),
        ("Complex, complex.", "COMPLEX"),
        # the leading word decides when it is a label, even if others follow
        ("MEDIUM - it needs some reasoning, but is not COMPLEX", "MEDIUM"),
        ("simple or complex?", "SIMPLE"),
        # no label, or several different ones after a non-label lead: unreadable
        ("", None),
        ("banana", None),
        ("I am not sure: SIMPLE or COMPLEX", None),
        ("simpleton", None),
        ("COMPLEXITY is high", None),
        ("HARD", None),
    ],
)
def test_parse_label(reply: str, label: str | None) -> None:
    assert parse_label(reply, LABELS) == label


def test_parse_custom_labels_returns_the_configured_spelling() -> None:
    labels = {"Easy": "simple", "Hard": "complex"}
    assert parse_label("HARD.", labels) == "Hard"
    assert parse_label("this one is easy", labels) == "Easy"
    assert parse_label("medium", labels) is None


def test_parse_numeric_labels() -> None:
    labels = {"1": "simple", "2": "medium", "3": "complex"}
    assert parse_label("2", labels) == "2"
    assert parse_label("Difficulty: 3.", labels) == "3"
    assert parse_label("10", labels) is None


# --- the consultation ------------------------------------------------------------------------------

def test_decide_asks_for_one_classification_call() -> None:
    consult = ask(router(), "What is the capital of Peru?")
    assert isinstance(consult, Consult)
    call = consult.call
    assert call.model == "openai/gpt-4o-mini"
    assert call.messages == (
        {"role": "user",
         "content": DEFAULT_PROMPT.replace("{prompt}", "What is the capital of Peru?")},
    )
    assert (call.max_tokens, call.temperature, call.timeout_s) == (8, 0.0, 2.0)


def test_call_parameters_and_prompt_template_are_configurable() -> None:
    llm = router(prompt="Rate: {prompt}\nOne word.", max_tokens=3, temperature=0.5,
                 timeout_s=0.25)
    consult = ask(llm, "hello")
    assert isinstance(consult, Consult)
    assert consult.call.messages[0]["content"] == "Rate: hello\nOne word."
    assert (consult.call.max_tokens, consult.call.temperature, consult.call.timeout_s) == (
        3, 0.5, 0.25)


def test_the_classified_text_is_bounded() -> None:
    llm = router(prompt="{prompt}", max_prompt_chars=10)
    consult = ask(llm, "x" * 5000)
    assert isinstance(consult, Consult)
    assert len(consult.call.messages[0]["content"]) == 10


def test_the_last_user_message_is_classified() -> None:
    request = RouteRequest.from_messages([
        {"role": "system", "content": "SYSTEM TEXT"},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "an answer"},
        {"role": "user", "content": "follow-up question"},
    ])
    consult = router(prompt="<{prompt}>").decide(request, no_candidates())
    assert isinstance(consult, Consult)
    assert consult.call.messages[0]["content"] == "<follow-up question>"


def test_a_reply_gives_its_tier() -> None:
    verdict = classify(router(), "prove P != NP", "COMPLEX")
    assert verdict.tier == "complex"
    assert verdict.confidence == 0.8
    assert verdict.scores == {"COMPLEX": 1.0}
    assert verdict.router == "llm"
    assert verdict.reason == "classifier said COMPLEX (openai/gpt-4o-mini)"


def test_custom_labels_map_to_tiers() -> None:
    llm = router(labels={"EASY": "simple", "HARD": "complex"}, confidence=0.9)
    verdict = classify(llm, "x", "hard")
    assert (verdict.tier, verdict.confidence) == ("complex", 0.9)


@pytest.mark.parametrize(
    ("reply", "error", "why"),
    [
        ("I don't know", None, "unreadable classifier reply \"I don't know\""),
        (None, "timed out after 2s", "classifier failed: timed out after 2s"),
        (None, "RuntimeError: 503", "classifier failed: RuntimeError: 503"),
        (None, None, "classifier failed: no reply"),
    ],
)
def test_default_tier_on_garbage_timeout_and_error(
    reply: str | None, error: str | None, why: str
) -> None:
    verdict = classify(router(), "hello", reply, error)
    assert why in verdict.reason
    assert verdict.tier == "medium"
    assert verdict.confidence == 0.3
    assert verdict.reason.endswith("default tier 'medium'")
    assert verdict.scores == {}


def test_default_tier_and_confidence_are_configurable() -> None:
    verdict = classify(router(default_tier="complex", default_confidence=0.1), "x", "??")
    assert (verdict.tier, verdict.confidence) == ("complex", 0.1)


def test_a_long_garbage_reply_is_truncated_in_the_reason() -> None:
    verdict = classify(router(), "x", "z" * 500)
    assert "z" * 40 in verdict.reason
    assert "z" * 41 not in verdict.reason


# --- the cache: TTL with an injected clock, and an LRU bound ---------------------------------------

def test_identical_prompts_are_not_reclassified_within_the_ttl() -> None:
    clock = Clock()
    llm = router(clock, cache_ttl_s=300)
    classify(llm, "What is 2+2?", "SIMPLE")
    clock.now += 299.9
    cached = ask(llm, "What is 2+2?")
    assert isinstance(cached, Verdict)
    assert cached.tier == "simple"
    assert cached.confidence == 0.8
    assert cached.reason.startswith("cached classification")
    assert not is_cached(llm, "What is 2+2? ")  # another text is another key


def test_entries_expire_at_the_ttl() -> None:
    clock = Clock()
    llm = router(clock, cache_ttl_s=300)
    classify(llm, "What is 2+2?", "SIMPLE")
    clock.now += 300
    assert not is_cached(llm, "What is 2+2?")
    # re-classified with a new answer, which is cached from now on
    assert classify(llm, "What is 2+2?", "MEDIUM").tier == "medium"
    assert ask(llm, "What is 2+2?").tier == "medium"  # type: ignore[union-attr]


def test_a_cache_hit_does_not_extend_the_ttl() -> None:
    clock = Clock()
    llm = router(clock, cache_ttl_s=100)
    classify(llm, "q", "SIMPLE")
    clock.now += 90
    assert is_cached(llm, "q")
    clock.now += 10
    assert not is_cached(llm, "q")


def test_failures_and_garbage_are_not_cached() -> None:
    llm = router()
    classify(llm, "a", None, "timeout")
    assert not is_cached(llm, "a")
    classify(llm, "b", "gibberish")
    assert not is_cached(llm, "b")


def test_the_same_last_message_in_another_conversation_is_a_hit() -> None:
    llm = router()
    classify(llm, "translate 'cat' to French", "SIMPLE")
    other = RouteRequest.from_messages([
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "translate 'cat' to French"},
    ])
    assert isinstance(llm.decide(other, no_candidates()), Verdict)


@pytest.mark.parametrize("params", [{"cache_ttl_s": 0}, {"cache_size": 0}])
def test_caching_can_be_switched_off(params: dict[str, float]) -> None:
    llm = router(**params)
    classify(llm, "q", "SIMPLE")
    assert not is_cached(llm, "q")


def test_lru_bound_evicts_the_least_recently_used() -> None:
    llm = router(cache_size=2)
    classify(llm, "a", "SIMPLE")
    classify(llm, "b", "MEDIUM")
    assert is_cached(llm, "a")  # a is now more recently used than b
    classify(llm, "c", "COMPLEX")  # evicts b
    assert is_cached(llm, "a")
    assert is_cached(llm, "c")
    assert not is_cached(llm, "b")


def test_lru_bound_holds_under_many_prompts() -> None:
    llm = router(cache_size=3)
    for i in range(10):
        classify(llm, f"prompt {i}", "SIMPLE")
    assert [is_cached(llm, f"prompt {i}") for i in range(10)] == [False] * 7 + [True] * 3


def test_expired_entries_of_one_prompt_do_not_affect_others() -> None:
    clock = Clock()
    llm = router(clock, cache_ttl_s=10)
    classify(llm, "old", "SIMPLE")
    clock.now += 5
    classify(llm, "new", "COMPLEX")
    clock.now += 6  # old expired (11 s), new still fresh (6 s)
    assert not is_cached(llm, "old")
    assert is_cached(llm, "new")


def test_two_routers_do_not_share_a_cache() -> None:
    first, second = router(), router()
    classify(first, "q", "SIMPLE")
    assert is_cached(first, "q")
    assert not is_cached(second, "q")


# --- parameters ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "params",
    [{"prompt": "no placeholder"}, {"timeout_s": 0}, {"max_tokens": 0}, {"confidence": 1.5},
     {"default_confidence": -0.1}, {"cache_ttl_s": -1}, {"temperature": 3}, {"unknown": 1}],
)
def test_invalid_parameters(params: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        LLMParams(model="m", **params)
