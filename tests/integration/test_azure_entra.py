"""Azure OpenAI with refreshing Entra ID tokens (`azure.auth: entra` without `api_key_env`): a
credential object issuing short-lived tokens that the fake Azure checks (each is valid at the fake
until it expires, `FakeUpstream.tokens.mint`), driven through the real adapter over loopback HTTP;
the token cached, fetched again before it expires, always in a worker thread; and, through a
served gateway, what happens without the `azure` extra or without the client secret."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from pathlib import Path
from typing import Any

import openai
import pytest
from azure.core.credentials import AccessToken

from llmroute import config
from llmroute.errors import ConfigError, UpstreamError
from llmroute.providers.azure import AzureOpenAIProvider
from llmroute.providers.azure_auth import SCOPE
from llmroute.settings import ProviderConfig
from llmroute.testing.upstream import FakeUpstream

from .support import Serve, assert_openai_error, user

AZURE = "azure/gpt-4o"


class ShortLivedCredential:
    """An azure-identity style credential whose tokens the fake issues, each `ttl_s` long."""

    def __init__(self, up: FakeUpstream, ttl_s: float):
        self.up, self.ttl_s = up, ttl_s
        self.issued: list[str] = []
        self.threads: set[str] = set()
        self.scopes: set[tuple[str, ...]] = set()

    def get_token(self, *scopes: str) -> AccessToken:
        self.scopes.add(scopes)
        self.threads.add(threading.current_thread().name)
        token, expires = self.up.tokens.mint(self.ttl_s)
        self.issued.append(token)
        return AccessToken(token, int(expires))


class FailingCredential:
    def get_token(self, *scopes: str) -> AccessToken:
        raise RuntimeError("tenant says no; client secret s3cr3t-value-123 rejected")


def entra_config(up: FakeUpstream, **azure: Any) -> ProviderConfig:
    return ProviderConfig.model_validate({
        "type": "azure", "base_url": up.base_url,
        "timeout": {"connect_s": 2, "first_byte_s": 5, "total_s": 10},
        "azure": {"auth": "entra", "deployments": {"gpt-4o": "prod-4o"}, **azure}})


def ask(provider: AzureOpenAIProvider, text: str = "hi", stream: bool = False) -> str:
    async def main() -> str:
        body = {"messages": user(text)}
        try:
            if stream:
                parts = [c["choices"][0]["delta"].get("content") or ""
                         async for c in provider.stream(body, "gpt-4o") if c.get("choices")]
                return "".join(parts)
            answer = await provider.complete(body, "gpt-4o")
            return str(answer["choices"][0]["message"]["content"])
        finally:
            await provider.aclose()
    return asyncio.run(main())


def sent_tokens(up: FakeUpstream) -> list[str]:
    return [r.headers["authorization"].removeprefix("Bearer ") for r in up.requests
            if r.protocol == "azure"]


def test_a_token_is_cached_then_fetched_again_before_it_expires(up: FakeUpstream) -> None:
    credential = ShortLivedCredential(up, ttl_s=301)  # fresh for 1 s: refreshed 300 s early
    provider = AzureOpenAIProvider("azure", entra_config(up), None, credential=credential)

    assert ask(provider, "one") == "echo from prod-4o: one"
    assert ask(provider, "two", stream=True) == "echo from prod-4o: two"
    time.sleep(1.1)
    assert ask(provider, "three") == "echo from prod-4o: three"

    first, second = credential.issued
    assert sent_tokens(up) == [first, first, second]  # cached, then refreshed
    assert credential.scopes == {(SCOPE,)}
    assert threading.main_thread().name not in credential.threads  # fetched off the loop


def test_the_fake_refuses_an_expired_token_so_the_refresh_is_what_keeps_it_working(
        up: FakeUpstream) -> None:
    credential = ShortLivedCredential(up, ttl_s=0.5)
    provider = AzureOpenAIProvider("azure", entra_config(up), None, credential=credential)
    assert provider.tokens is not None
    provider.tokens.clock = lambda: 0.0  # a provider that never thinks its token is old
    provider.tokens._expires = 10_000.0
    ask(provider)  # the first call fetches a token
    time.sleep(0.6)

    with pytest.raises(UpstreamError) as caught:
        ask(provider)
    assert caught.value.kind == "auth" and caught.value.upstream_status == 401
    assert sent_tokens(up) == [credential.issued[0]] * 2


def test_a_failing_credential_is_an_auth_error_naming_no_secret(up: FakeUpstream) -> None:
    provider = AzureOpenAIProvider("azure", entra_config(up), None,
                                   credential=FailingCredential())
    with pytest.raises(UpstreamError) as caught:
        ask(provider)
    assert caught.value.kind == "auth"
    assert "no Entra ID token (RuntimeError)" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)
    assert up.requests == []


def test_a_missing_client_secret_is_an_openai_auth_error_from_the_gateway(
        serve: Serve, up: FakeUpstream, tmp_path: Path) -> None:
    azure = {"auth": "entra", "tenant_id": "t-1", "client_id": "c-1",
             "client_secret_env": "AZURE_SECRET_FOR_TEST", "deployments": {"gpt-4o": "prod-4o"}}
    gw = serve({"providers": {"azure": {"type": "azure", "base_url": up.base_url,
                                        "azure": azure}},
                "models": {AZURE: {}}})
    with gw.client() as client, pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=AZURE, messages=user("hi"))
    error = assert_openai_error({"error": caught.value.body})
    assert [a["error"] for a in error["attempts"]] == ["auth"]
    assert "AZURE_SECRET_FOR_TEST is not set" in error["message"]
    assert up.requests == []


def write(tmp_path: Path, azure: str) -> Path:
    path = tmp_path / "llmroute.yaml"
    tiers = "".join(f"  {t}: {{model: {AZURE}}}\n" for t in ("simple", "medium", "complex"))
    path.write_text(f"providers:\n  azure: {{type: azure, base_url: 'https://x.openai.azure.com'"
                    f", azure: {azure}}}\nmodels:\n  {AZURE}: {{}}\ntiers:\n{tiers}",
                    encoding="utf-8")
    return path


def test_without_the_extra_entra_tokens_are_a_config_error_naming_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "azure.identity", None)
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, "{auth: entra}"), environ={})
    (problem,) = [p for p in caught.value.problems if p.path.startswith("providers.")]
    assert problem.path == "providers.azure.azure.auth"
    assert "pip install 'llmroute[azure]'" in problem.message


def test_config_check_warns_of_an_unset_client_secret_and_needs_its_app(tmp_path: Path) -> None:
    path = write(tmp_path, "{auth: entra, tenant_id: t, client_id: c, client_secret_env: S}")
    found = [p for p in config.check(path, environ={}).problems
             if p.path.startswith("providers.")]
    assert [(p.path, p.severity) for p in found] == [
        ("providers.azure.azure.client_secret_env", "warning")]
    assert [p for p in config.check(path, environ={"S": "x"}).problems
            if p.path.startswith("providers.")] == []
    with pytest.raises(ConfigError):
        config.load(write(tmp_path, "{auth: entra, client_secret_env: S}"), environ={"S": "x"})
