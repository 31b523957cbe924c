"""Issue 13: every configured model gets a usable profile on day one, with its source; `like:` pins."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from helpers import load_yaml
from llmroute.cli.models_abilities import ability_rows, find_classifier
from llmroute.config import check
from llmroute.engine import Engine
from llmroute.learn.abilities import profile_from_tier
from llmroute.learn.artifact import load_default
from llmroute.routers.classifier import ClassifierRouter

EXAMPLE = Path(__file__).resolve().parents[2] / "llmroute.example.yaml"
ENV = {"OPENAI_API_KEY": "x", "ANTHROPIC_API_KEY": "x"}


def learned(engine: Engine) -> ClassifierRouter:
    router = engine.policies["learned"]
    assert isinstance(router, ClassifierRouter)
    return router


def test_the_default_models_get_a_profile_of_their_own(tmp_path: Path) -> None:
    router = learned(Engine(load_yaml(tmp_path, "")))
    bundled = load_default()
    kinds = {name: source.kind for name, source in router.sources.items()}
    assert kinds["openai/gpt-4o-mini"] == "alias"
    assert router.sources["openai/gpt-4o-mini"].known == "gpt-4o-mini-2024-07-18"
    assert all(kind in {"alias", "trained", "catalog"} for kind in kinds.values()), kinds
    for name in kinds:
        mine, tier_avg = router.model.profile(name), profile_from_tier(bundled, name,
                                                                        router.tiers[name])
        assert not np.allclose(mine.ability, tier_avg.ability), name
    z = router.model.latent("Solve 3x^2 - 12x + 9 = 0 step by step for a beginner.")
    p = router.model.predict_latent(z, 60, ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"])[0]
    assert abs(float(p[0]) - float(p[1])) > 0.01   # no longer the same tier average


def test_like_pins_the_known_profile_exactly(tmp_path: Path) -> None:
    settings = load_yaml(tmp_path, "models:\n  anthropic/claude-haiku-4-5: {like: claude-3-haiku}\n")
    router = learned(Engine(settings))
    source = router.sources["anthropic/claude-haiku-4-5"]
    assert (source.kind, source.known) == ("pinned", "claude-3-haiku-20240307")
    mine, known = router.model.profile("anthropic/claude-haiku-4-5"), load_default().profile(
        "claude-3-haiku-20240307")
    assert np.array_equal(mine.ability, known.ability) and mine.bias == known.bias


def test_an_unknown_like_is_a_config_error_naming_the_closest(tmp_path: Path) -> None:
    (tmp_path / "conf.yaml").write_text("models:\n  anthropic/claude-haiku-4-5: {like: claude-3-haku}\n")
    checked = check(tmp_path / "conf.yaml", environ=ENV)
    found = [p for p in checked.errors if p.path == "models.anthropic/claude-haiku-4-5.like"]
    assert len(found) == 1 and "claude-3-haiku-20240307" in found[0].hint   # once, not per policy
    assert "names no model the router artifact knows" in found[0].message


def test_the_example_config_models_all_get_a_profile(tmp_path: Path) -> None:
    engine = Engine(load_yaml(tmp_path, EXAMPLE.read_text()))
    _, router = find_classifier(engine, None)    # no classifier policy there: the default one
    rows = {row.name: row for row in ability_rows(router, "hello")}
    assert set(rows) == {spec.name for spec in engine.catalog if spec.tier}
    assert rows["local/llama-3.1-8b"].kind == "pinned"
    assert all(row.kind != "tier" for row in rows.values())
