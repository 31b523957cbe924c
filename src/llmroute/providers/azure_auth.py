"""Entra ID tokens for Azure OpenAI (`azure.auth: entra` without `api_key_env`), through
azure-identity (the `azure` extra): a client-secret credential when `azure.client_secret_env` is
set (with `tenant_id` and `client_id`), else DefaultAzureCredential (environment, workload
identity, managed identity, Azure CLI, ...; it reads the process environment). The token, for
the scope https://cognitiveservices.azure.com/.default, is cached and fetched again five minutes
before it expires; a fetch (an HTTP call, or a CLI process) runs in a worker thread, never on the
event loop. This module imports azure-identity only inside `credential_for`.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from ..errors import ConfigProblem
from ..settings import AzureConfig, ProviderConfig

SCOPE = "https://cognitiveservices.azure.com/.default"
REFRESH_EARLY_S = 300
EXTRA = "the `azure` extra (azure-identity): pip install 'llmroute[azure]'"


class AccessTokenLike(Protocol):
    """azure.core's AccessToken: the token and when it expires (epoch seconds)."""

    @property
    def token(self) -> str: ...
    @property
    def expires_on(self) -> int: ...


class TokenCredential(Protocol):
    """What azure-identity's (synchronous) credentials offer."""

    def get_token(self, *scopes: str) -> AccessTokenLike: ...


class TokenError(Exception):
    """No token: the credential failed (the message names its exception type, no secret)."""


def identity_missing() -> bool:
    """Whether the `azure` extra is not installed."""
    try:
        importlib.import_module("azure.identity")
    except ImportError:
        return True
    return False


def uses_identity(config: ProviderConfig) -> bool:
    """Entra auth through azure-identity (not a static token from `api_key_env`)."""
    return config.azure.auth == "entra" and not config.api_key_env


def credential_for(azure: AzureConfig, environ: Mapping[str, str]) -> TokenCredential:
    """The configured credential; ValueError when its secret's env var is not set."""
    from azure.identity import ClientSecretCredential, DefaultAzureCredential

    if not azure.client_secret_env:
        return DefaultAzureCredential()
    secret = environ.get(azure.client_secret_env)
    if not secret or not azure.tenant_id or not azure.client_id:
        raise ValueError(f"env var {azure.client_secret_env} is not set")
    extra = {"authority": azure.authority_host} if azure.authority_host else {}
    return ClientSecretCredential(azure.tenant_id, azure.client_id, secret, **extra)


def azure_problems(name: str, config: ProviderConfig, environ: Mapping[str, str]
                   ) -> list[ConfigProblem]:
    """What `llmroute config check` says about an Azure entry's Entra auth."""
    if not uses_identity(config):
        return []
    if identity_missing():
        return [ConfigProblem(f"providers.{name}.azure.auth", "`auth: entra` without "
                              f"`api_key_env` fetches tokens with azure-identity: install {EXTRA}",
                              "or put a (static) token in the env var `api_key_env` names")]
    secret_env = config.azure.client_secret_env
    if secret_env and not environ.get(secret_env):
        return [ConfigProblem(f"providers.{name}.azure.client_secret_env", f"env var "
                              f"{secret_env} is not set: calls to this provider will fail (auth)",
                              severity="warning")]
    return []


class EntraTokens:
    """One credential's token, cached until five minutes before it expires."""

    def __init__(self, credential: TokenCredential, clock: Callable[[], float] = time.time):
        self.credential = credential
        self.clock = clock
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    def _fresh(self) -> bool:
        return self._token is not None and self.clock() < self._expires - REFRESH_EARLY_S

    async def token(self) -> str:
        """A token valid for at least five more minutes; TokenError when none can be had."""
        if not self._fresh():
            async with self._lock:  # one fetch at a time; the others wait for its token
                if not self._fresh():
                    got = await asyncio.to_thread(self._fetch)
                    self._token, self._expires = got.token, float(got.expires_on)
        assert self._token is not None
        return self._token

    def _fetch(self) -> AccessTokenLike:
        try:
            return self.credential.get_token(SCOPE)
        except Exception as exc:  # azure-identity raises ClientAuthenticationError and others
            raise TokenError(f"no Entra ID token ({type(exc).__name__})") from None


def entra_tokens(config: ProviderConfig, environ: Mapping[str, str],
                 credential: TokenCredential | None = None) -> tuple[EntraTokens | None, str]:
    """The entry's token source (`credential`, else the configured one), or why it has none
    (said at each request: the gateway still starts, other models still serve)."""
    if credential is not None:
        return EntraTokens(credential), ""
    if identity_missing():
        return None, f"Entra ID tokens need {EXTRA}"
    try:
        return EntraTokens(credential_for(config.azure, environ)), ""
    except ValueError as exc:
        return None, str(exc)
