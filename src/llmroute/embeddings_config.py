"""The `embeddings:` section of the configuration: the embedding models the gateway passes
through to an OpenAI-compatible deployment (`POST /v1/embeddings`). They are never routed: they
stay out of the routing pool and out of `auto`."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


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
