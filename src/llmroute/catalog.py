"""The model catalog: prices, context windows, tiers and capabilities, and the cost of a usage.

Prices are exact decimals in USD per 1M tokens. The bundled snapshot of LiteLLM's price map prices any
known model name; config entries override or add models. A model with no price is `priced=False`
and its cost is `None` (unknown), never $0.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from functools import cache, cached_property
from importlib import resources
from typing import Any

from .settings import ModelConfig, Settings
from .types import Usage

ALL_CAPABILITIES = frozenset({"tools", "vision", "json"})
_MILLION = Decimal(1_000_000)
#: LiteLLM provider names that users commonly write differently in a `provider/model` name.
PROVIDER_ALIASES = {"google": "gemini", "vertex": "vertex_ai-language-models", "azure_openai": "azure"}
#: Provider names the price map files under one catalog prefix (LiteLLM lists Bedrock's newer models,
#: e.g. Nova, as `bedrock_converse`).
PROVIDER_FAMILIES = {"bedrock": frozenset({"bedrock_converse"})}
_FLAG_TO_CAPABILITY = {"tools": "tools", "vision": "vision", "json": "json"}


@dataclass(frozen=True)
class ModelSpec:
    """One model as the router sees it. Prices are USD per 1M tokens; None means unknown."""

    name: str
    provider: str
    input_per_m: Decimal | None
    output_per_m: Decimal | None
    cached_input_per_m: Decimal | None = None
    #: USD per 1M tokens written to the provider's prompt cache (Anthropic: 1.25x input, 5-minute
    #: cache); None: writes are billed at the input price.
    cache_write_per_m: Decimal | None = None
    #: USD per 1M tokens written to Anthropic's 1-hour cache (2x input); None: as 5-minute writes.
    cache_write_1h_per_m: Decimal | None = None
    #: The shortest prefix (tokens) the provider caches at a `cache_control` breakpoint
    #: (Anthropic: 1024 for Sonnet/Opus, 2048 or 4096 for Haiku); None: unknown.
    cache_min_tokens: int | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None
    tier: str | None = None
    capabilities: frozenset[str] = ALL_CAPABILITIES
    source: str = "config"
    like: str | None = None   # the learned router's profile: this known model's (`models: like`)

    @property
    def priced(self) -> bool:
        """True when both input and output prices are known."""
        return self.input_per_m is not None and self.output_per_m is not None

    def cost(self, usage: Usage) -> Decimal | None:
        """Exact USD cost of `usage`, or None when the model is unpriced.

        Cache reads and writes are part of `usage.input_tokens` (as in OpenAI's usage) and are
        billed at the cached-read and cache-write prices when known, else at the input price.
        """
        if self.input_per_m is None or self.output_per_m is None:
            return None
        if not (usage.cached_input_tokens or usage.cache_write_tokens) and self._plain_sum:
            return (usage.input_tokens * self.input_per_m
                    + usage.output_tokens * self.output_per_m) / _MILLION
        return self._full_cost(usage)

    @cached_property
    def _plain_sum(self) -> bool:
        """Whether a usage with no cache reads or writes may skip their zero terms: it may when
        no cache price has a smaller exponent than the input or output price, so that adding
        their zeros would not change the sum's exponent (the Decimal is then the same, digits
        and all, as `_full_cost`'s)."""
        assert self.input_per_m is not None and self.output_per_m is not None
        least = min(_exponent(self.input_per_m), _exponent(self.output_per_m))
        zeros = (self._price(self.cached_input_per_m), self._price(self.cache_write_per_m),
                 self._price(self.cache_write_1h_per_m or self.cache_write_per_m))
        return all(_exponent(price) >= least for price in zeros)

    def _full_cost(self, usage: Usage) -> Decimal:
        """`cost` term by term (the prices must be known)."""
        assert self.input_per_m is not None and self.output_per_m is not None
        cached = min(usage.cached_input_tokens, usage.input_tokens)
        written = min(usage.cache_write_tokens, usage.input_tokens - cached)
        hour = min(usage.cache_write_1h_tokens, written)
        total = (
            (usage.input_tokens - cached - written) * self.input_per_m
            + cached * self._price(self.cached_input_per_m)
            + (written - hour) * self._price(self.cache_write_per_m)
            + hour * self._price(self.cache_write_1h_per_m or self.cache_write_per_m)
            + usage.output_tokens * self.output_per_m
        )
        return total / _MILLION

    def prompt_cache_savings(self, usage: Usage) -> Decimal | None:
        """What the provider's prompt cache saved on `usage` against billing every input token at
        the input price: the reads' discount less the writes' premium (negative when a write is
        not read back). None when unpriced; 0 when nothing was read or written."""
        plain = self.cost(Usage(usage.input_tokens, usage.output_tokens))
        actual = self.cost(usage)
        return None if plain is None or actual is None else plain - actual

    def _price(self, per_m: Decimal | None) -> Decimal:
        assert self.input_per_m is not None
        return self.input_per_m if per_m is None else per_m


_SPEC_FIELDS = frozenset(f.name for f in fields(ModelSpec))


def _exponent(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return exponent if isinstance(exponent, int) else 0  # only finite prices reach here


def _per_million(per_token: Any) -> Decimal | None:
    """Convert LiteLLM's float USD-per-token to exact USD per 1M tokens (via its shortest repr)."""
    if per_token is None:
        return None
    return Decimal(repr(float(per_token))) * _MILLION


@cache
def bundled_prices() -> Mapping[str, Mapping[str, Any]]:
    """The vendored LiteLLM price snapshot (read once; immutable data)."""
    text = resources.files("llmroute").joinpath("data/prices.json").read_text(encoding="utf-8")
    data: dict[str, Mapping[str, Any]] = json.loads(text)
    return data


def _bundled_entry(name: str, provider: str | None) -> tuple[str, Mapping[str, Any]] | None:
    """Find `name` in the snapshot: exactly, or as `provider/model` with a matching provider."""
    prices = bundled_prices()
    if name in prices:
        return name, prices[name]
    if "/" in name:
        prefix, bare = name.split("/", 1)
        wanted = PROVIDER_ALIASES.get(prefix, prefix)
        aliased = f"{wanted}/{bare}"
        if wanted != prefix and aliased in prices:
            return aliased, prices[aliased]
        entry = prices.get(bare)
        if entry is not None and entry.get("provider") in {prefix, wanted, provider}:
            return bare, entry
        if entry is not None and entry.get("provider") in PROVIDER_FAMILIES.get(prefix, ()):
            return bare, {**entry, "provider": prefix}  # served by the prefix's deployments
    return None


def _spec_from_entry(name: str, entry: Mapping[str, Any]) -> ModelSpec:
    caps = frozenset(cap for flag, cap in _FLAG_TO_CAPABILITY.items() if entry.get(flag))
    return ModelSpec(
        name=name,
        provider=str(entry.get("provider", name.split("/", 1)[0] if "/" in name else "unknown")),
        input_per_m=_per_million(entry.get("input")),
        output_per_m=_per_million(entry.get("output")),
        cached_input_per_m=_per_million(entry.get("cached_input")),
        cache_write_per_m=_per_million(entry.get("cache_write")),
        cache_write_1h_per_m=_per_million(entry.get("cache_write_1h")),
        cache_min_tokens=entry.get("cache_min_tokens"),
        context_window=entry.get("context_window"),
        max_output_tokens=entry.get("max_output_tokens"),
        capabilities=caps,
        source="bundled",
    )


def resolve_model(name: str, config: ModelConfig | None, use_bundled: bool = True) -> ModelSpec | None:
    """The spec for `name`: the bundled entry (if any) with the config entry's fields on top."""
    provider = config.provider if config else None
    found = _bundled_entry(name, provider) if use_bundled else None
    if found is None and config is None:
        return None
    base = _spec_from_entry(name, found[1]) if found else ModelSpec(
        name=name,
        provider=provider or (name.split("/", 1)[0] if "/" in name else "unknown"),
        input_per_m=None,
        output_per_m=None,
    )
    if config is None:
        return base
    overrides: dict[str, Any] = {
        key: value
        for key, value in config.model_dump(exclude_none=True).items()
        if key in _SPEC_FIELDS and key != "capabilities"
    }
    if config.capabilities is not None:
        overrides["capabilities"] = frozenset(config.capabilities)
    fields = {**base.__dict__, **overrides, "source": "config" if found is None else "bundled+config"}
    return ModelSpec(**fields)


class Catalog:
    """The models llmroute can route to (the pool), each resolved to a ModelSpec, in ladder order."""

    def __init__(self, specs: Mapping[str, ModelSpec], use_bundled: bool = True):
        self._specs = dict(specs)
        self._use_bundled = use_bundled

    @classmethod
    def from_settings(cls, settings: Settings) -> Catalog:
        """Resolve every model the tiers and `models:` name; unknown names are skipped here
        (config validation reports them)."""
        use_bundled = settings.catalog.bundled_prices
        specs: dict[str, ModelSpec] = {}
        for name, tier in pool_with_tiers(settings):
            spec = resolve_model(name, settings.models.get(name), use_bundled)
            if spec is None:
                continue
            if spec.tier is None:
                spec = ModelSpec(**{**spec.__dict__, "tier": tier})
            specs[name] = spec
        return cls(specs, use_bundled)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def get(self, name: str) -> ModelSpec | None:
        """The pool's spec for `name`, else the bundled snapshot's (for concrete model requests)."""
        spec = self._specs.get(name)
        if spec is None and self._use_bundled:
            spec = resolve_model(name, None)
        return spec

    def cost(self, model: str, usage: Usage) -> Decimal | None:
        """Exact USD cost of `usage` on `model`; None when the model is unknown or unpriced."""
        spec = self.get(model)
        return None if spec is None else spec.cost(usage)

    def by_tier(self, tier: str) -> list[ModelSpec]:
        """Pool models whose tier is `tier`, in pool order."""
        return [spec for spec in self._specs.values() if spec.tier == tier]


def pool_with_tiers(settings: Settings) -> list[tuple[str, str | None]]:
    """Every model in the tier table (in ladder order) and `models:`, without duplicates, with its
    tier: the (first) tier it is the primary of, else the first tier listing it as a fallback."""
    primaries = {tier.model: name for name, tier in reversed(settings.tiers.items())}
    seen: dict[str, str | None] = {}
    for tier_name in settings.tiers:
        for name in settings.tier_models(tier_name):
            seen.setdefault(name, primaries.get(name, tier_name))
    for name in settings.models:
        seen.setdefault(name, None)
    return list(seen.items())
