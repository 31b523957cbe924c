"""Name resolution: a gateway model is an artifact model under another spelling, by explicit rules."""

from __future__ import annotations

import pytest

from llmroute.learn.names import NameMatch, bare, closest, match_known, split_snapshot

KNOWN = ("gpt-4o-mini-2024-07-18", "gpt-4o-2024-05-13", "gpt-4o-2024-08-06", "gpt-4-0314",
         "claude-3-haiku-20240307", "meta/llama-2-70b-chat", "Meta-Llama-3.1-8B-Instruct",
         "deepseek-v2-chat-0628", "claude-v2")


@pytest.mark.parametrize(("name", "known", "rule"), [
    ("gpt-4-0314", "gpt-4-0314", "exact"),
    ("anthropic/claude-3-haiku-20240307", "claude-3-haiku-20240307", "spelling"),
    ("Claude-3-Haiku-20240307", "claude-3-haiku-20240307", "spelling"),
    ("replicate/meta/llama-2-70b-chat", "meta/llama-2-70b-chat", "spelling"),
    ("together/meta-llama-3.1-8b-instruct", "Meta-Llama-3.1-8B-Instruct", "spelling"),
    ("openai/gpt-4o-mini", "gpt-4o-mini-2024-07-18", "snapshot"),
    ("GPT-4o-mini", "gpt-4o-mini-2024-07-18", "snapshot"),
    ("anthropic/claude-3-haiku", "claude-3-haiku-20240307", "snapshot"),
])
def test_same_model_under_another_spelling(name: str, known: str, rule: str) -> None:
    assert match_known(name, KNOWN) == NameMatch(name, known, rule)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", [
    "openai/gpt-4o",                  # two dated snapshots: different models, no guess
    "gpt-4o-mini-2024-09-01",         # another snapshot date is another model
    "gpt-4",                          # gpt-4-0314 is not a dated snapshot of gpt-4
    "deepseek-v2-chat",               # nor is -0628
    "claude-haiku-4-5",               # a newer model, not claude-3-haiku
    "openai/gpt-4.1-mini",
    "claude-v2.1",
])
def test_different_models_never_match(name: str) -> None:
    assert match_known(name, KNOWN) is None


def test_helpers() -> None:
    assert bare("openai/GPT-4o") == "gpt-4o"
    assert split_snapshot("claude-3-haiku-20240307") == ("claude-3-haiku", "2024-03-07")
    assert split_snapshot("gpt-4o-2024-08-06") == ("gpt-4o", "2024-08-06")
    assert split_snapshot("gpt-4-0314") == ("gpt-4-0314", None)
    assert closest("claude-3-haku", KNOWN)[0] == "claude-3-haiku-20240307"
