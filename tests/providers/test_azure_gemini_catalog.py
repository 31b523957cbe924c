"""`azure/…` and `gemini/…` names resolve to the bundled LiteLLM prices, and the deployment that
serves them is the provider entry of their catalog provider (`azure`, `gemini`), with the upstream
name the adapters send (Azure: the deployment named in `azure.deployments`)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from llmroute.catalog import Catalog, resolve_model
from llmroute.config import load
from llmroute.deployments import Deployments
from llmroute.providers import AzureOpenAIProvider, GeminiProvider


@pytest.mark.parametrize(("name", "provider", "input_per_m", "cached_per_m"), [
    ("azure/gpt-4o", "azure", "2.5", "1.25"),
    ("azure/gpt-4o-mini", "azure", "0.165", "0.075"),
    ("azure/eu/gpt-4o-2024-08-06", "azure", "2.75", "1.375"),
    ("azure_openai/gpt-4o", "azure", "2.5", "1.25"),
    ("gemini/gemini-2.5-flash", "gemini", "0.3", "0.03"),
    ("gemini/gemini-2.5-pro", "gemini", "1.25", "0.125"),
    ("google/gemini-2.5-flash", "gemini", "0.3", "0.03"),
])
def test_names_resolve_to_litellm_prices(name: str, provider: str, input_per_m: str,
                                         cached_per_m: str) -> None:
    spec = resolve_model(name, None)
    assert spec is not None and spec.provider == provider
    assert spec.input_per_m == Decimal(input_per_m)
    assert spec.cached_input_per_m == Decimal(cached_per_m)


def test_each_is_served_by_its_provider_entry_under_its_upstream_name(tmp_path: Path) -> None:
    path = tmp_path / "llmroute.yaml"
    path.write_text(yaml.safe_dump({
        "providers": {
            "azure": {"type": "azure", "base_url": "https://r.openai.azure.com",
                      "azure": {"deployments": {"gpt-4o": "prod-4o"}}},
            "gemini": {"type": "gemini",
                       "base_url": "https://generativelanguage.googleapis.com/v1beta"}},
        "models": {"azure/gpt-4o": {}, "gemini/gemini-2.5-flash": {},
                   "google/gemini-2.5-pro": {}},
        "tiers": {"simple": {"model": "gemini/gemini-2.5-flash"},
                  "medium": {"model": "azure/gpt-4o"}, "complex": {"model": "azure/gpt-4o"}}}))
    settings = load(path, environ={})
    deployments = Deployments.from_settings(settings, Catalog.from_settings(settings), {})
    azure, azure_name = deployments.get("azure/gpt-4o")
    gemini, gemini_name = deployments.get("gemini/gemini-2.5-flash")
    assert isinstance(azure, AzureOpenAIProvider) and azure_name == "gpt-4o"
    assert azure.deployment(azure_name) == "prod-4o"
    assert isinstance(gemini, GeminiProvider) and gemini_name == "gemini-2.5-flash"
    aliased, aliased_name = deployments.get("google/gemini-2.5-pro")  # `google/` is `gemini/`
    assert aliased is gemini and aliased_name == "gemini-2.5-pro"


def test_gemini_models_need_no_providers_entry_of_their_own(tmp_path: Path) -> None:
    path = tmp_path / "llmroute.yaml"
    path.write_text(yaml.safe_dump({
        "models": {"gemini/gemini-2.5-flash": {}},
        "tiers": {tier: {"model": "gemini/gemini-2.5-flash"}
                  for tier in ("simple", "medium", "complex")}}))
    settings = load(path, environ={})
    deployments = Deployments.from_settings(settings, Catalog.from_settings(settings),
                                            {"GEMINI_API_KEY": "k-1234567890"})
    provider, name = deployments.get("gemini/gemini-2.5-flash")
    assert isinstance(provider, GeminiProvider) and name == "gemini-2.5-flash"
    assert provider.http.base_url == "https://generativelanguage.googleapis.com/v1beta"
    assert provider.http.headers["x-goog-api-key"] == "k-1234567890"
