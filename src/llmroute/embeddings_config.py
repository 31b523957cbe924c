"""The `embeddings:` section of the configuration: the embedding models the gateway passes
through to an OpenAI-compatible deployment (`POST /v1/embeddings`). They are never routed: they
stay out of the routing pool and out of `auto`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from .errors import ConfigProblem


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EmbeddingModelConfig(_Frozen):
    """One embedding model: the deployment that serves it and its price (default: the bundled
    LiteLLM price map's embedding entry of that name)."""

    deployment: str = Field(description="the `providers:` entry (type openai) that serves it")
    upstream_name: str | None = Field(
        None, description="the model name sent upstream (default: the name without "
                          "`<deployment>/`)")
    input_per_m: Decimal | None = Field(None, ge=0, description="USD per 1M input tokens")


class EmbeddingsConfig(_Frozen):
    """`embeddings.models`: name -> its deployment and price."""

    models: dict[str, EmbeddingModelConfig] = Field(default_factory=dict)


class _Deployment(Protocol):
    @property
    def type(self) -> str: ...


@cache
def bundled_embedding_prices() -> Mapping[str, Mapping[str, Any]]:
    """The vendored LiteLLM embedding prices (USD per input token)."""
    text = resources.files("llmroute").joinpath("data/embedding_prices.json").read_text("utf-8")
    data: dict[str, Mapping[str, Any]] = json.loads(text)
    return data


def embedding_price(name: str, upstream: str, configured: Decimal | None) -> Decimal | None:
    """USD per 1M input tokens: configured, else the bundled entry of the name or upstream name."""
    if configured is not None:
        return configured
    prices = bundled_embedding_prices()
    entry = prices.get(name) or prices.get(upstream)
    if not entry or entry.get("input") is None:
        return None
    return Decimal(repr(float(entry["input"]))) * 1_000_000  # exact, via the shortest repr


def upstream_of(name: str, model: EmbeddingModelConfig) -> str:
    """The name the upstream knows: `upstream_name`, else the name without `<deployment>/`."""
    prefix, _, rest = name.partition("/")
    return model.upstream_name or (rest if rest and prefix == model.deployment else name)


def embedding_problems(config: EmbeddingsConfig, providers: Mapping[str, _Deployment]
                       ) -> list[ConfigProblem]:
    """A model whose deployment is missing or not OpenAI-compatible (an error); an unpriced
    model (a warning: its requests are ledgered without a cost)."""
    problems = []
    for name, model in config.models.items():
        path = f"embeddings.models.{name}"
        deployment = providers.get(model.deployment)
        if deployment is None or deployment.type != "openai":
            what = "no `providers:` entry" if deployment is None else "not an `openai` provider"
            problems.append(ConfigProblem(f"{path}.deployment", f"{model.deployment!r} is {what}",
                                          "embeddings pass through to an OpenAI-compatible "
                                          "deployment"))
            continue
        if embedding_price(name, upstream_of(name, model), model.input_per_m) is None:
            problems.append(ConfigProblem(path, "no price known", "set input_per_m",
                                          severity="warning"))
    return problems
