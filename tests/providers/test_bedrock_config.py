"""Bedrock in config and catalog: `bedrock/…` names priced as LiteLLM's map names them and served
by the `bedrock` deployment; `llmroute config check` naming missing credentials or region."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from llmroute import config
from llmroute.catalog import bundled_prices, resolve_model
from llmroute.deployments import deployment_name

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
