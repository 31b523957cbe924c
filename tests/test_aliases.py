"""Model aliases (llmroute.aliases): exact names, glob patterns in order, dated snapshot names
resolved only when one served model fits; `config check` refuses unknown targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import check_yaml, load_yaml
from llmroute.aliases import Aliases, Resolved

SERVED = {"anthropic/claude-sonnet-4-5": "claude-sonnet-4-5",
          "anthropic/claude-opus-4-1": "claude-opus-4-1",
          "work/claude-opus-4-1": "claude-opus-4-1",
          "bedrock/haiku": "anthropic.claude-3-5-haiku-20241022-v1:0",
          "legacy": "claude-3-opus-20240229"}


def aliases(configured: dict[str, str] | None = None) -> Aliases:
    return Aliases.build(configured or {}, SERVED)


@pytest.mark.parametrize(("name", "target"), [
    ("claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4-5"),
    ("claude-sonnet-4-5@20250929", "anthropic/claude-sonnet-4-5"),   # Vertex's spelling
    ("claude-sonnet-4-5-latest", "anthropic/claude-sonnet-4-5"),
    ("claude-3-opus-20240229", "legacy"),                            # an upstream name as sent
    ("claude-sonnet-4-5", "anthropic/claude-sonnet-4-5"),            # without the provider
])
def test_a_snapshot_name_resolves_to_the_one_served_model(name: str, target: str) -> None:
    assert aliases().resolve(name) == Resolved(target, "snapshot name")


@pytest.mark.parametrize("name", [
    "claude-opus-4-1-20250805",   # two served models fit: no guess
    "claude-haiku-4-5-20251001",  # none fits
    "claude-sonnet-4",            # a prefix is not a fit
    "claude-opus-4-1",            # two fit
    "gpt-4o-20240806",
])
def test_no_resolution_without_exactly_one_fit(name: str) -> None:
    assert aliases().resolve(name) is None


def test_exact_names_then_patterns_in_order() -> None:
    table = aliases({"claude-haiku-4-5-20251001": "auto/cheap", "claude-*-haiku-*": "simple",
                     "claude-*": "auto", "claude-sonnet-4-5-20250929": "legacy"})
    assert table.resolve("claude-haiku-4-5-20251001") == Resolved(
        "auto/cheap", "alias 'claude-haiku-4-5-20251001'")
    assert table.resolve("claude-3-5-haiku-20241022") == Resolved(
        "simple", "alias pattern 'claude-*-haiku-*'")
    assert table.resolve("claude-opus-4-1-20250805") == Resolved("auto", "alias pattern 'claude-*'")
    # an exact alias beats the snapshot rule
    assert table.resolve("claude-sonnet-4-5-20250929") == Resolved(
        "legacy", "alias 'claude-sonnet-4-5-20250929'")
    assert table.resolve("gpt-4o") is None


def test_config_check_refuses_unknown_targets(tmp_path: Path) -> None:
    checked = check_yaml(tmp_path, """
        model_aliases:
          "claude-*": auto
          claude-x: auto/nope
          claude-y: no-such-model
          claude-z: simple
    """)
    problems = {p.path: p for p in checked.problems if p.path.startswith("model_aliases")}
    assert set(problems) == {"model_aliases.claude-x", "model_aliases.claude-y"}
    assert problems["model_aliases.claude-y"].message == "unknown target 'no-such-model'"
    assert "auto/<policy>" in problems["model_aliases.claude-x"].hint


def test_config_loads_aliases_and_refuses_bad_ones(tmp_path: Path) -> None:
    settings = load_yaml(tmp_path, 'model_aliases: {"claude-*": auto}')
    assert settings.model_aliases == {"claude-*": "auto"}
    checked = check_yaml(tmp_path, "model_aliases: {claude-x: [1]}")
    assert any(p.path.startswith("model_aliases") for p in checked.problems)
