"""Prompt-cache prices from the bundled catalog (LiteLLM's cache read, 5-minute and 1-hour
write prices, minimum prefix) and their arithmetic, including 1-hour writes priced apart."""

from __future__ import annotations

from decimal import Decimal

from llmroute.catalog import resolve_model
from llmroute.outcome import usage_of
from llmroute.providers.anthropic_wire import openai_usage
from llmroute.settings import ModelConfig
from llmroute.types import Usage

M = Decimal(1_000_000)


def test_bundled_anthropic_cache_prices_and_minimum() -> None:
    spec = resolve_model("claude-sonnet-4-5", None)
    assert spec is not None
    assert (spec.input_per_m, spec.cached_input_per_m, spec.cache_write_per_m,
            spec.cache_write_1h_per_m, spec.cache_min_tokens) == (
        Decimal("3"), Decimal("0.3"), Decimal("3.75"), Decimal("6"), 1024)
    openai_model = resolve_model("gpt-4o", None)
    assert openai_model is not None and openai_model.cache_write_per_m is None
    assert openai_model.cached_input_per_m == Decimal("1.25")


def test_config_sets_cache_prices_and_minimum() -> None:
    config = ModelConfig(input_per_m=Decimal("1"), output_per_m=Decimal("2"),
                         cache_write_per_m=Decimal("1.25"), cache_min_tokens=2048)
    spec = resolve_model("house/model", config)
    assert spec is not None
    assert (spec.cache_write_per_m, spec.cache_min_tokens) == (Decimal("1.25"), 2048)


def test_one_hour_writes_are_priced_apart() -> None:
    spec = resolve_model("claude-sonnet-4-5", None)
    assert spec is not None
    # 3000 prompt tokens: 100 plain, 500 read, 1000 written for 5 minutes, 1400 for an hour
    usage = Usage(3000, 10, cached_input_tokens=500, cache_write_tokens=2400,
                  cache_write_1h_tokens=1400)
    expected = (100 * 3 + 500 * Decimal("0.3") + 1000 * Decimal("3.75") + 1400 * 6 + 10 * 15) / M
    assert spec.cost(usage) == expected == Decimal("0.01275")
    plain = (3000 * 3 + 10 * 15) / M
    assert spec.prompt_cache_savings(usage) == plain - expected


def test_anthropic_usage_says_the_one_hour_writes_and_usage_of_reads_them() -> None:
    anthropic = {"input_tokens": 100, "output_tokens": 10, "cache_read_input_tokens": 500,
                 "cache_creation_input_tokens": 2400,
                 "cache_creation": {"ephemeral_5m_input_tokens": 1000,
                                    "ephemeral_1h_input_tokens": 1400}}
    usage = openai_usage(anthropic)
    assert usage["prompt_tokens"] == 3000
    assert usage["prompt_tokens_details"] == {"cached_tokens": 500, "cache_write_tokens": 2400,
                                              "cache_write_1h_tokens": 1400}
    assert usage_of({"usage": usage}) == Usage(3000, 10, 500, 2400, 1400)
