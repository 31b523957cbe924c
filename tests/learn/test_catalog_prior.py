"""The catalog prior and the day-one profile chain (issue 13), on the bundled artifact."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import numpy as np
import pytest

from llmroute.catalog import ModelSpec, resolve_model
from llmroute.errors import ConfigError
from llmroute.learn.artifact import load_default
from llmroute.learn.catalog_prior import KNOWN_CATALOG_KEYS, CatalogPrior, family, released
from llmroute.learn.model import RouterModel
from llmroute.learn.provenance import day_one_profile


@pytest.fixture(scope="module")
def bundled() -> RouterModel:
    return load_default()


def spec(name: str, tier: str = "simple", **fields: object) -> ModelSpec:
    found = resolve_model(name, None)
    assert found is not None
    return replace(found, tier=tier, **fields)  # type: ignore[arg-type]


def test_every_catalog_key_is_in_the_bundled_snapshot_and_the_artifact(bundled: RouterModel) -> None:
    for known, key in KNOWN_CATALOG_KEYS.items():
        assert known in bundled.models
        found = resolve_model(key, None)
        assert found is not None and found.priced, key


def test_release_dates_and_families() -> None:
    assert released("claude-3-haiku-20240307") == pytest.approx(2024 + 2 / 12)
    assert released("anthropic/claude-haiku-4-5") == pytest.approx(2025 + 9 / 12)
    assert released("acme/unknown-model") is None
    assert family("openai/gpt-4.1") == "openai" and family("o1-mini-2024-09-12") == "openai"
    assert family("anthropic/claude-sonnet-4-5") == "anthropic"
    assert family("local/llama-3.1-8b", "local") == "other"


def test_prior_is_deterministic_and_tells_catalog_entries_apart(bundled: RouterModel) -> None:
    one, two = CatalogPrior.fit(bundled), CatalogPrior.fit(bundled)
    assert one is not None and two is not None
    assert len(one.names) >= 20 and one.penalty == two.penalty
    haiku = one.profile("anthropic/claude-haiku-4-5", spec("claude-haiku-4-5"))
    again = two.profile("anthropic/claude-haiku-4-5", spec("claude-haiku-4-5"))
    sonnet = one.profile("anthropic/claude-sonnet-4-5", spec("claude-sonnet-4-5"))
    assert haiku is not None and again is not None and sonnet is not None
    assert np.array_equal(haiku.ability, again.ability) and haiku.bias == again.bias
    assert not np.allclose(haiku.ability, sonnet.ability)
    unpriced = replace(spec("claude-haiku-4-5"), input_per_m=None)
    assert one.profile("x", unpriced) is None


def test_holding_a_model_out_changes_the_fit_and_too_few_models_give_none(bundled: RouterModel) -> None:
    full = CatalogPrior.fit(bundled)
    without = CatalogPrior.fit(bundled, exclude={"gpt-4o-2024-08-06"})
    assert full is not None and without is not None
    assert "gpt-4o-2024-08-06" not in without.names
    assert CatalogPrior.fit(bundled, exclude=set(KNOWN_CATALOG_KEYS) - {"gpt-4-0314"}) is None


def test_features_are_clamped_to_the_known_range(bundled: RouterModel) -> None:
    prior = CatalogPrior.fit(bundled)
    assert prior is not None
    far = spec("claude-haiku-4-5", input_per_m=Decimal("1e-9"), output_per_m=Decimal("1e9"))
    very_far = spec("claude-haiku-4-5", input_per_m=Decimal("1e-12"), output_per_m=Decimal("1e12"))
    a, b = prior.profile("a", far), prior.profile("b", very_far)
    assert a is not None and b is not None and np.array_equal(a.ability, b.ability)


def test_the_day_one_chain_and_its_sources(bundled: RouterModel) -> None:
    prior = CatalogPrior.fit(bundled)
    known = bundled.profile("claude-3-haiku-20240307")
    pinned = day_one_profile(bundled, spec("claude-haiku-4-5", like="claude-3-haiku"), prior=prior)
    assert pinned.source.kind == "pinned" and pinned.source.known == "claude-3-haiku-20240307"
    assert np.array_equal(pinned.profile.ability, known.ability) and pinned.profile.bias == known.bias
    assert pinned.profile.name == "claude-haiku-4-5" and pinned.profile.tier == "simple"
    alias = day_one_profile(bundled, spec("gpt-4o-mini"), prior=prior)
    assert (alias.source.kind, alias.source.known) == ("alias", "gpt-4o-mini-2024-07-18")
    trained = day_one_profile(bundled, spec("gpt-4-0314"), prior=prior)
    assert trained.source.kind == "trained"
    policy = day_one_profile(bundled, spec("gpt-4o-mini"), alias="gpt-4-0314", prior=prior)
    assert (policy.source.kind, policy.source.known) == ("alias", "gpt-4-0314")
    catalog = day_one_profile(bundled, spec("claude-haiku-4-5"), prior=prior)
    assert catalog.source.kind == "catalog" and "released 2025-10" in catalog.source.describe()
    house = ModelSpec("acme/house", "acme", None, None, tier="simple")
    tier = day_one_profile(bundled, house, prior=prior)
    assert tier.source.kind == "tier" and "tier prior" in tier.source.describe()
    with pytest.raises(KeyError):
        day_one_profile(bundled, replace(house, tier=None), prior=prior)


def test_an_unknown_like_is_a_config_error_naming_the_closest(bundled: RouterModel) -> None:
    with pytest.raises(ConfigError) as caught:
        day_one_profile(bundled, spec("claude-haiku-4-5", like="claude-3-haku"))
    problem = caught.value.problems[0]
    assert problem.path == "models.claude-haiku-4-5.like"
    assert "claude-3-haiku-20240307" in problem.hint
