"""Bedrock in config and catalog: `bedrock/…` names priced as LiteLLM's map names them and served
by the `bedrock` deployment; `llmroute config check` naming missing credentials or region, or
the missing `bedrock` extra; base_url's default."""

from __future__ import annotations

import asyncio
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from llmroute import config
from llmroute.catalog import bundled_prices, resolve_model
from llmroute.deployments import deployment_name
from llmroute.errors import ConfigError, UpstreamError
from llmroute.providers.bedrock import BedrockProvider
from llmroute.settings import ProviderConfig

AWS = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}


@pytest.mark.parametrize("model_id", [
    "anthropic.claude-3-5-haiku-20241022-v1:0",       # a model id
    "us.anthropic.claude-3-5-haiku-20241022-v1:0",    # a cross-region inference profile
    "us.amazon.nova-micro-v1:0",                      # filed under bedrock_converse by LiteLLM
    "us-east-1/anthropic.claude-v2:1",                # a region-specific entry
])
def test_bedrock_names_resolve_to_the_price_maps_entries(model_id: str) -> None:
    entry = bundled_prices().get(model_id) or bundled_prices()[f"bedrock/{model_id}"]
    spec = resolve_model(f"bedrock/{model_id}", None)

    assert spec is not None and spec.provider == "bedrock"
    assert spec.input_per_m == Decimal(repr(entry["input"])) * 1_000_000
    assert spec.output_per_m == Decimal(repr(entry["output"])) * 1_000_000


def test_a_nova_model_is_served_by_the_bedrock_deployment(tmp_path: Path) -> None:
    path = write(tmp_path, "{type: bedrock, base_url: 'https://bedrock-runtime.us-west-2."
                 "amazonaws.com'}", "bedrock/us.amazon.nova-micro-v1:0")
    settings = config.load(path, environ=AWS)
    spec = resolve_model("bedrock/us.amazon.nova-micro-v1:0", None)
    assert spec is not None and deployment_name(spec, settings) == "bedrock"
    assert [str(p) for p in config.check(path, environ=AWS).problems] == []


def test_unrelated_prefixes_still_do_not_resolve() -> None:
    assert resolve_model("openai/us.amazon.nova-micro-v1:0", None) is None


def write(tmp_path: Path, provider: str,
          model: str = "bedrock/anthropic.claude-3-5-haiku-20241022-v1:0") -> Path:
    """A config whose only provider is `provider` and whose three tiers are `model`."""
    path = tmp_path / "llmroute.yaml"
    tiers = "".join(f"  {tier}: {{model: {model}}}\n" for tier in ("simple", "medium", "complex"))
    path.write_text(f"providers:\n  bedrock: {provider}\nmodels:\n  {model}: {{}}\n"
                    f"tiers:\n{tiers}", encoding="utf-8")
    return path


def test_config_check_names_missing_credentials_and_region(tmp_path: Path) -> None:
    path = write(tmp_path, "{type: bedrock, base_url: 'http://127.0.0.1:9'}")
    checked = config.check(path, environ={})
    found = {p.path: p for p in checked.problems if p.path.startswith("providers.bedrock")}

    assert found["providers.bedrock"].severity == "warning"
    assert "AWS_ACCESS_KEY_ID" in found["providers.bedrock"].message
    assert found["providers.bedrock.region"].severity == "error"
    assert "AWS_REGION" in found["providers.bedrock.region"].hint


@pytest.mark.parametrize(("provider", "environ"), [
    ("{type: bedrock, base_url: 'https://bedrock-runtime.eu-west-1.amazonaws.com'}", AWS),
    ("{type: bedrock, base_url: 'http://127.0.0.1:9', region: us-east-1}", AWS),
    ("{type: bedrock, base_url: 'http://127.0.0.1:9'}", {**AWS, "AWS_REGION": "us-east-1"}),
])
def test_a_region_from_config_host_or_env_and_keys_leave_nothing_to_say(
        tmp_path: Path, provider: str, environ: dict[str, str]) -> None:
    checked = config.check(write(tmp_path, provider), environ=environ)
    assert [str(p) for p in checked.problems if p.path.startswith("providers.")] == []


def test_with_a_bedrock_api_key_neither_aws_keys_nor_a_region_are_needed(tmp_path: Path) -> None:
    path = write(tmp_path, "{type: bedrock, base_url: 'http://127.0.0.1:9', "
                 "api_key_env: AWS_BEARER_TOKEN_BEDROCK}")
    unset = config.check(path, environ={})
    assert [p.path for p in unset.problems if p.path.startswith("providers.")] == [
        "providers.bedrock.api_key_env"]  # the usual warning: its env var is not set
    ready = config.check(path, environ={"AWS_BEARER_TOKEN_BEDROCK": "ABSK-key"})
    assert [str(p) for p in ready.problems if p.path.startswith("providers.")] == []


def without_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if the `bedrock` extra were not installed: importing botocore fails."""
    monkeypatch.setitem(sys.modules, "botocore", None)


def test_without_the_extra_a_signed_bedrock_entry_is_a_config_error_naming_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    without_botocore(monkeypatch)
    path = write(tmp_path, "{type: bedrock, region: us-east-1}")
    with pytest.raises(ConfigError) as caught:
        config.load(path, environ=AWS)
    (problem,) = [p for p in caught.value.problems if p.path.startswith("providers.")]
    assert problem.path == "providers.bedrock.type" and problem.severity == "error"
    assert "pip install 'llmroute[bedrock]'" in problem.message


def test_without_the_extra_a_bedrock_api_key_entry_still_loads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    without_botocore(monkeypatch)
    path = write(tmp_path, "{type: bedrock, region: us-east-1, api_key_env: BEDROCK_KEY}")
    settings = config.load(path, environ={"BEDROCK_KEY": "ABSK-key"})
    provider = BedrockProvider("bedrock", settings.providers["bedrock"], {"BEDROCK_KEY": "k"})
    assert provider.http.base_url == "https://bedrock-runtime.us-east-1.amazonaws.com"


def test_without_the_extra_a_request_is_an_auth_error_naming_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    without_botocore(monkeypatch)
    provider = BedrockProvider("bedrock", ProviderConfig(type="bedrock", region="us-east-1"), AWS)
    with pytest.raises(UpstreamError) as caught:
        asyncio.run(provider.complete({"messages": [{"role": "user", "content": "hi"}]},
                                      "anthropic.claude-3-5-haiku-20241022-v1:0"))
    assert caught.value.kind == "auth"
    assert "llmroute[bedrock]" in str(caught.value)


def test_base_url_defaults_to_the_regions_endpoint_and_the_region_to_the_profiles(
        tmp_path: Path) -> None:
    (tmp_path / "config").write_text("[profile eu]\nregion = eu-central-1\n", encoding="utf-8")
    env = {**AWS, "AWS_CONFIG_FILE": str(tmp_path / "config")}
    provider = BedrockProvider("bedrock", ProviderConfig(type="bedrock", profile="eu"), env)
    assert provider.region == "eu-central-1"
    assert provider.http.base_url == "https://bedrock-runtime.eu-central-1.amazonaws.com"
    path = write(tmp_path, "{type: bedrock, profile: eu}")
    assert [str(p) for p in config.check(path, environ=env).problems
            if p.path.startswith("providers.")] == []


def test_only_bedrock_may_leave_out_base_url(tmp_path: Path) -> None:
    path = tmp_path / "llmroute.yaml"
    path.write_text("providers:\n  acme: {type: openai}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        config.load(path, environ={})
    assert any(p.path == "providers.acme" and "base_url" in p.message
               for p in caught.value.problems)
