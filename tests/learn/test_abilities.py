"""Profiles for unseen models: from a few outcomes, and from a tier."""

from __future__ import annotations

import numpy as np
import pytest

from llmroute.learn.abilities import fit_profile, prior, profile_from_tier, resolve_profile
from llmroute.learn.model import ModelProfile, RouterModel

from .conftest import CODE_WORDS, TRIVIA_WORDS


def _prompts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    words = CODE_WORDS + TRIVIA_WORDS
    return [" ".join(rng.choice(words, size=6)) + "?" * int(rng.integers(0, 3)) for _ in range(n)]


def test_from_tier_is_the_tier_average(handmade: RouterModel) -> None:
    profile = profile_from_tier(handmade, "new-medium", "medium")
    rows = [handmade.index("m1"), handmade.index("m2")]
    assert np.allclose(profile.ability, handmade.abilities[rows].mean(axis=0), atol=1e-6)
    assert profile.bias == pytest.approx(float(handmade.biases[rows].mean()))
    assert profile.tier == "medium" and np.isnan(profile.usd_per_input_char)
    priced = profile.with_prices(0.15, 0.60)              # USD per 1M tokens
    assert priced.usd_per_output_char == pytest.approx(0.60 / 4e6)
    extended = handmade.with_model(priced)
    assert extended.models[-1] == "new-medium" and len(extended.models) == 7
    p = extended.predict("What is the capital?")
    assert np.isfinite(p.expected_cost).all()
    with pytest.raises(KeyError, match="tiers: complex, medium, simple"):
        profile_from_tier(handmade, "x", "premium")


def test_few_outcomes_recover_a_new_models_abilities(handmade: RouterModel) -> None:
    """A new model with a known profile answers 60 prompts; the fitted profile predicts it on new ones
    far better than the all-model prior does."""
    truth = handmade.profile("c1")
    without = handmade.select([m for m in handmade.models if m != "c1"])
    rng = np.random.default_rng(3)
    train, test = _prompts(60, 1), _prompts(300, 2)
    z = handmade.latent_many(train).astype(np.float64)
    p_true = 1 / (1 + np.exp(-(z @ truth.ability + truth.bias)))
    outcomes = (rng.random(len(train)) < p_true).astype(float)
    fitted = fit_profile(without, "newcomer", train, outcomes.tolist(), output_chars=[40.0] * 60)
    prior_only = fit_profile(without, "newcomer", [], [])
    target = handmade.predict_many(test, ["c1"])[0][:, 0]
    got = without.with_model(fitted).predict_many(test, ["newcomer"])[0][:, 0]
    base = without.with_model(prior_only).predict_many(test, ["newcomer"])[0][:, 0]
    assert np.mean(np.abs(got - target)) < 0.6 * np.mean(np.abs(base - target))
    assert np.corrcoef(got, target)[0, 1] > 0.8
    assert fitted.length_bias == pytest.approx(np.log1p(40.0), abs=0.5)


def test_prior_and_argument_checks(handmade: RouterModel) -> None:
    mean, cov = prior(handmade, "simple")
    assert mean.shape == (handmade.latent_dim + 1,) and cov.shape == (len(mean), len(mean))
    assert np.all(np.linalg.eigvalsh(cov) > 0)
    with pytest.raises(ValueError, match="outcomes"):
        fit_profile(handmade, "x", ["a", "b"], [1.0])
    bad = ModelProfile("bad", np.zeros(2, dtype=np.float32), 0.0, np.zeros(2, dtype=np.float32), 0.0)
    with pytest.raises(ValueError, match="wrong dimension"):
        handmade.with_model(bad)


def test_resolve_profile_for_gateway_names(handmade: RouterModel) -> None:
    same = resolve_profile(handmade, "openai/cheap", alias="s1")
    assert same.name == "openai/cheap" and np.array_equal(same.ability, handmade.profile("s1").ability)
    assert resolve_profile(handmade, "c2").name == "c2"
    borrowed = resolve_profile(handmade, "vendor/new", tier="complex")
    assert borrowed.tier == "complex"
    with pytest.raises(KeyError, match="no tier"):
        resolve_profile(handmade, "vendor/unknown")


def test_empty_tier_means_every_known_model(handmade: RouterModel) -> None:
    profile = profile_from_tier(handmade, "anyone", "")
    assert np.allclose(profile.ability, handmade.abilities.mean(axis=0), atol=1e-6)
