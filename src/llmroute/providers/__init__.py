"""Upstream provider adapters, one per wire protocol, built from `providers:` config entries."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..cache.breakpoints import AutoBreakpoints
from ..settings import ProviderConfig
from .anthropic import AnthropicProvider
from .azure import AzureOpenAIProvider
from .base import Provider
from .bedrock import BedrockProvider
from .gemini import GeminiProvider
from .openai_compat import OpenAICompatProvider
from .replay import ReplayProvider
from .vertex import VertexProvider

#: Wire protocol -> adapter class. Adding a protocol is one adapter module and one line here.
ADAPTERS: Mapping[str, Callable[[str, ProviderConfig, str | None], Provider]] = {
    "openai": OpenAICompatProvider,
    "anthropic": AnthropicProvider,
    "replay": ReplayProvider,
    "azure": AzureOpenAIProvider,
    "gemini": GeminiProvider,
    "vertex": VertexProvider,
}


def build_provider(name: str, config: ProviderConfig, environ: Mapping[str, str],
                   breakpoints: AutoBreakpoints | None = None) -> Provider:
    """The adapter for one `providers:` entry, its key read from the env var the config names;
    `breakpoints`: the automatic prompt-cache policy of an Anthropic deployment."""
    if config.type == "bedrock":  # signs with AWS credentials, not an API key
        return BedrockProvider(name, config, environ)
    api_key = environ.get(config.api_key_env) if config.api_key_env else None
    if config.type == "azure":  # an Entra client secret is read from the environment too
        return AzureOpenAIProvider(name, config, api_key, environ=environ)
    if breakpoints is not None and config.type == "anthropic":
        return AnthropicProvider(name, config, api_key, breakpoints)
    return ADAPTERS[config.type](name, config, api_key)


__all__ = ["ADAPTERS", "AnthropicProvider", "AzureOpenAIProvider", "BedrockProvider",
           "GeminiProvider", "OpenAICompatProvider", "Provider", "ReplayProvider", "VertexProvider",
           "build_provider"]
