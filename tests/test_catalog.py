"""Tests of the model catalog: exact prices from the bundled snapshot, cost arithmetic, name
resolution, config overrides, unpriced models and the pool built from settings."""

from __future__ import annotations

from decimal import Decimal
from itertools import repeat
from pathlib import Path

import pytest

from helpers import default_settings
from llmroute.catalog import Catalog, ModelSpec, _per_million, bundled_prices, resolve_model
from llmroute.settings import ModelConfig, Settings
from llmroute.types import Usage

D = Decimal


def spec(name: str) -> ModelSpec:
    found = resolve_model(name, None)
    assert found is not None, name
    return found


# --- prices converted exactly from the snapshot's per-token floats --------------------------------

@pytest.mark.parametrize(
    ("name", "input_per_m", "output_per_m", "cached_per_m"),
    [
        ("openai/gpt-4o-mini", "0.15", "0.60", "0.075"),
        ("anthropic/claude-sonnet-4-5", "3", "15", "0.30"),
        ("anthropic/claude-haiku-4-5", "1", "5", "0.10"),
        ("openai/gpt-4.1-mini", "0.40", "1.60", "0.10"),
        ("openai/gpt-4.1", "2", "8", "0.50"),
        # 1.65e-07 * 1e6 is 0.16499999999999998 in floats; the conversion must not carry that noise
        ("azure/gpt-4o-mini", "0.165", "0.66", "0.075"),
    ],
)
def test_bundled_prices_are_exact_decimals_per_million(
    name: str, input_per_m: str, output_per_m: str, cached_per_m: str
) -> None:
    model = spec(name)
    assert model.input_per_m == D(input_per_m)
    assert model.output_per_m == D(output_per_m)
    assert model.cached_input_per_m == D(cached_per_m)
    assert model.priced


def test_per_million_conversion() -> None:
    assert _per_million(None) is None
    assert _per_million(1.5e-07) == D("0.15")
    assert _per_million(3e-06) == D("3")
    assert _per_million(0) == D(0)
    # exact where naive conversions are not: the float product and the float's binary value
    assert 4e-07 * 1_000_000 != 0.4
    assert D(1.5e-07) * 1_000_000 != D("0.15")
    assert _per_million(4e-07) == D("0.4")
    assert _per_million(1e-07) == D("0.1")


def test_bundled_limits_and_capabilities() -> None:
    model = spec("openai/gpt-4o-mini")
    assert model.provider == "openai"
    assert model.context_window == 128_000
    assert model.max_output_tokens == 16_384
    assert model.capabilities == frozenset({"tools", "vision", "json"})
    assert model.source == "bundled"


def test_bundled_model_without_capability_flags_has_none() -> None:
    entry = bundled_prices()["command"]
    assert not any(entry.get(flag) for flag in ("tools", "vision", "json"))
    assert spec("command").capabilities == frozenset()


# --- cost arithmetic --------------------------------------------------------------------------------

def test_cost_of_a_million_input_output_and_cached_tokens() -> None:
    mini = spec("openai/gpt-4o-mini")
    assert mini.cost(Usage(input_tokens=1_000_000)) == D("0.15")
    assert mini.cost(Usage(output_tokens=1_000_000)) == D("0.60")
    assert mini.cost(Usage(input_tokens=1_000_000, cached_input_tokens=1_000_000)) == D("0.075")
    assert mini.cost(Usage()) == D(0)


def test_cached_tokens_are_part_of_input_and_billed_at_the_cached_price() -> None:
    mini = spec("openai/gpt-4o-mini")
    # 600 uncached × 0.15 + 400 cached × 0.075 + 500 out × 0.60 = 90 + 30 + 300 = 420 per 1M
    assert mini.cost(Usage(1000, 500, 400)) == D("0.00042")
    sonnet = spec("anthropic/claude-sonnet-4-5")
    # 1500 × 3 + 500 × 0.30 + 1000 × 15 = 4500 + 150 + 15000 = 19650 per 1M
    assert sonnet.cost(Usage(2000, 1000, 500)) == D("0.01965")


def test_cached_tokens_beyond_the_input_count_are_capped() -> None:
    mini = spec("openai/gpt-4o-mini")
    # only the 100 input tokens exist; all of them are billed cached: 100 × 0.075 / 1M
    assert mini.cost(Usage(input_tokens=100, cached_input_tokens=500)) == D("0.0000075")


def test_cached_tokens_use_the_input_price_when_no_cached_price_is_known() -> None:
    model = ModelSpec("x", "acme", input_per_m=D(2), output_per_m=D(4), cached_input_per_m=None)
    assert model.cost(Usage(input_tokens=1000, cached_input_tokens=1000)) == D("0.002")


def test_a_million_calls_sum_exactly_to_the_cent() -> None:
    mini = spec("openai/gpt-4o-mini")
    one = mini.cost(Usage(1234, 567, 200))
    # (1034 × 0.15 + 200 × 0.075 + 567 × 0.60) / 1M = (155.10 + 15.00 + 340.20) / 1M
    assert one == D("0.0005103")
    total = sum(repeat(one, 1_000_000), D(0))
    assert total == D("510.30")
    assert total.quantize(D("0.01")) == D("510.30")

    sonnet = spec("anthropic/claude-sonnet-4-5")
    calls = [sonnet.cost(Usage(2000, 1000, 500)), sonnet.cost(Usage(10, 1, 0))]
    # 500k of each: 0.01965 × 500000 + (30 + 15) / 1M × 500000 = 9825 + 22.5
    mixed = sum(repeat(calls[0], 500_000), D(0)) + sum(repeat(calls[1], 500_000), D(0))
    assert mixed == D("9847.50")


# --- unpriced models are unknown, never $0 ----------------------------------------------------------

def test_a_config_only_model_without_prices_is_unpriced() -> None:
    model = resolve_model("acme/house-model", ModelConfig())
    assert model is not None
    assert not model.priced
    assert model.cost(Usage(1000, 1000)) is None
    assert model.source == "config"
    assert model.provider == "acme"


def test_a_bundled_model_without_prices_is_unpriced() -> None:
    assert bundled_prices()["azure/container"].get("input") is None
    model = spec("azure/container")
    assert not model.priced
    assert model.cost(Usage(1, 1)) is None


def test_half_priced_model_is_unpriced() -> None:
    model = resolve_model("acme/half", ModelConfig(input_per_m=D(1)))
    assert model is not None
    assert not model.priced
    assert model.cost(Usage(1000)) is None


def test_a_free_model_costs_zero_not_none() -> None:
    model = resolve_model("acme/free", ModelConfig(input_per_m=D(0), output_per_m=D(0)))
    assert model is not None
    assert model.priced
    assert model.cost(Usage(1000, 1000)) == D(0)


def test_catalog_cost_of_unknown_or_unpriced_model_is_none() -> None:
    catalog = Catalog.from_settings(default_settings())
    assert catalog.cost("nobody/no-such-model", Usage(10, 10)) is None
    assert catalog.cost("azure/container", Usage(10, 10)) is None
    assert catalog.cost("openai/gpt-4o-mini", Usage(1_000_000, 1_000_000)) == D("0.75")


# --- config overrides and additions -----------------------------------------------------------------

def test_config_overrides_bundled_prices_field_by_field() -> None:
    model = resolve_model(
        "openai/gpt-4o-mini", ModelConfig(input_per_m=D("1.25"), output_per_m=D(5))
    )
    assert model is not None
    assert (model.input_per_m, model.output_per_m) == (D("1.25"), D(5))
    assert model.cached_input_per_m == D("0.075")  # not overridden: still the snapshot's
    assert model.context_window == 128_000
    assert model.source == "bundled+config"
    # 1M in + 1M out = 1.25 + 5
    assert model.cost(Usage(1_000_000, 1_000_000)) == D("6.25")


def test_config_overrides_limits_tier_and_capabilities() -> None:
    model = resolve_model(
        "openai/gpt-4o-mini",
        ModelConfig(context_window=1000, max_output_tokens=100, tier="medium",
                    capabilities=("tools",)),
    )
    assert model is not None
    assert (model.context_window, model.max_output_tokens) == (1000, 100)
    assert model.tier == "medium"
    assert model.capabilities == frozenset({"tools"})
    assert model.input_per_m == D("0.15")


def test_config_only_model_defaults_to_all_capabilities_and_no_limits() -> None:
    model = resolve_model("acme/house", ModelConfig(input_per_m=D(1), output_per_m=D(2)))
    assert model is not None
    assert model.capabilities == frozenset({"tools", "vision", "json"})
    assert model.context_window is None
    assert model.max_output_tokens is None


def test_config_provider_is_kept() -> None:
    model = resolve_model("house-llm", ModelConfig(provider="vllm"))
    assert model is not None
    assert model.provider == "vllm"
    assert resolve_model("house-llm", None) is None


def test_bundled_prices_can_be_switched_off() -> None:
    assert resolve_model("openai/gpt-4o-mini", None, use_bundled=False) is None
    model = resolve_model("openai/gpt-4o-mini", ModelConfig(), use_bundled=False)
    assert model is not None
    assert not model.priced
    assert model.provider == "openai"


# --- provider/model name resolution ----------------------------------------------------------------

def test_provider_prefixed_name_resolves_to_the_bare_bundled_entry() -> None:
    prefixed = spec("anthropic/claude-sonnet-4-5")
    bare = spec("claude-sonnet-4-5")
    assert prefixed.name == "anthropic/claude-sonnet-4-5"
    assert bare.name == "claude-sonnet-4-5"
    assert prefixed.provider == bare.provider == "anthropic"
    assert (prefixed.input_per_m, prefixed.output_per_m) == (bare.input_per_m, bare.output_per_m)


@pytest.mark.parametrize(
    "name",
    ["openai/claude-sonnet-4-5", "anthropic/gpt-4o-mini", "nobody/gpt-4o-mini", "no-such-model",
     "anthropic/no-such-model"],
)
def test_wrong_provider_prefix_or_unknown_name_does_not_resolve(name: str) -> None:
    assert resolve_model(name, None) is None


def test_exact_prefixed_keys_of_the_snapshot_resolve() -> None:
    model = spec("gemini/gemini-2.5-flash")
    assert model.provider == "gemini"
    assert model.input_per_m == D("0.30")


@pytest.mark.parametrize(
    ("alias", "provider", "input_per_m"),
    [
        ("google/gemini-2.5-flash", "gemini", "0.30"),
        ("azure_openai/gpt-4o-mini", "azure", "0.165"),
        ("vertex/gemini-2.5-flash", "vertex_ai-language-models", "0.30"),
    ],
)
def test_provider_aliases(alias: str, provider: str, input_per_m: str) -> None:
    model = spec(alias)
    assert model.name == alias
    assert model.provider == provider
    assert model.input_per_m == D(input_per_m)


def test_a_custom_prefix_resolves_when_the_config_names_the_provider() -> None:
    model = resolve_model("corp-proxy/gpt-4o-mini", ModelConfig(provider="openai"))
    assert model is not None
    assert model.input_per_m == D("0.15")
    assert model.source == "bundled+config"


# --- the catalog built from settings ----------------------------------------------------------------

def test_pool_is_every_tier_model_once_in_ladder_order_with_its_first_tier() -> None:
    catalog = Catalog.from_settings(default_settings())
    assert [(m.name, m.tier) for m in catalog] == [
        ("openai/gpt-4o-mini", "simple"),
        ("anthropic/claude-haiku-4-5", "simple"),
        ("openai/gpt-4.1-mini", "medium"),
        ("anthropic/claude-sonnet-4-5", "complex"),
        ("openai/gpt-4.1", "complex"),
    ]
    assert len(catalog) == 5
    assert "openai/gpt-4.1" in catalog
    assert "openai/gpt-4o" not in catalog
    assert [m.name for m in catalog.by_tier("medium")] == ["openai/gpt-4.1-mini"]
    assert catalog.by_tier("nope") == []


def test_get_falls_back_to_the_snapshot_for_models_outside_the_pool() -> None:
    catalog = Catalog.from_settings(default_settings())
    outside = catalog.get("openai/gpt-4o")
    assert outside is not None
    assert outside.tier is None
    assert outside.input_per_m == D("2.5")
    assert catalog.get("nobody/nothing") is None


def test_models_section_adds_models_and_sets_tiers() -> None:
    settings = Settings.model_validate({
        "tiers": {"simple": {"model": "acme/small"}, "complex": {"model": "openai/gpt-4.1"}},
        "models": {
            "acme/small": {"input_per_m": "0.01", "output_per_m": "0.02"},
            "openai/gpt-4o": {"tier": "complex"},
            "acme/spare": {},
        },
        "policies": {"default": {"router": "fixed", "tier": "simple"}},
    })
    catalog = Catalog.from_settings(settings)
    assert [m.name for m in catalog] == ["acme/small", "openai/gpt-4.1", "openai/gpt-4o",
                                         "acme/spare"]
    small = catalog.get("acme/small")
    assert small is not None and small.tier == "simple"
    assert small.cost(Usage(1_000_000, 1_000_000)) == D("0.03")
    assert [m.name for m in catalog.by_tier("complex")] == ["openai/gpt-4.1", "openai/gpt-4o"]
    spare = catalog.get("acme/spare")
    assert spare is not None and spare.tier is None and not spare.priced


def test_unknown_pool_names_are_skipped_and_bundled_switch_is_honoured() -> None:
    settings = Settings.model_validate({
        "tiers": {"simple": {"model": "no-such-model", "fallbacks": ["openai/gpt-4o-mini"]}},
        "policies": {"default": {"router": "fixed", "tier": "simple"}},
        "catalog": {"bundled_prices": False},
        "models": {"openai/gpt-4o-mini": {"input_per_m": 1, "output_per_m": 1}},
    })
    catalog = Catalog.from_settings(settings)
    assert [m.name for m in catalog] == ["openai/gpt-4o-mini"]
    assert catalog.get("openai/gpt-4.1") is None  # no snapshot fallback when switched off


def test_a_primary_keeps_its_tier_when_an_earlier_tier_lists_it_as_a_fallback(
    tmp_path: Path,
) -> None:
    from helpers import load_yaml

    settings = load_yaml(tmp_path, """
tiers:
  simple: {model: openai/gpt-4o-mini, fallbacks: [openai/gpt-4.1]}
  medium: {model: openai/gpt-4.1-mini, fallbacks: [openai/gpt-4o-mini]}
  complex: {model: openai/gpt-4.1}
""")
    catalog = Catalog.from_settings(settings)
    assert [(m.name, m.tier) for m in catalog] == [
        ("openai/gpt-4o-mini", "simple"),
        ("openai/gpt-4.1", "complex"),
        ("openai/gpt-4.1-mini", "medium"),
    ]
