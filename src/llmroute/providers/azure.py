"""The Azure OpenAI adapter: the OpenAI chat wire at Azure's paths, with Azure's auth.

`POST {base_url}/openai/deployments/{deployment}/chat/completions?api-version=V` (the classic,
versioned API), or with `azure.api_version: v1`, `POST {base_url}/openai/v1/chat/completions`
with the deployment as `model` (the newer, unversioned API). `base_url` is the resource's
endpoint (`https://NAME.openai.azure.com`). The deployment is `azure.deployments[model]`, else the
upstream model name itself (deployments are often named after their model).

Auth: `azure.auth: key` sends the env var's value as the `api-key` header; `entra` with
`api_key_env` sends it as a static `Authorization: Bearer` Entra ID token (read once when the
gateway builds its deployments; never refreshed). `entra` without `api_key_env` gets tokens from
azure-identity (`azure_auth.py`, the `azure` extra): a client-secret credential or
DefaultAzureCredential, the token cached and refreshed five minutes before it expires, off the
event loop; each new token is scrubbed from what the upstream sends back.

Bodies, streams, usage (`prompt_tokens_details.cached_tokens`) and errors are OpenAI's, so the
OpenAI-compatible adapter does the work, but for Azure's content-filter annotations: a stream's
chunk carrying only `prompt_filter_results` (no choices, no usage, an empty id) is dropped, since
OpenAI clients expect none such. Azure's content filter (`code: content_filter`, 400) maps
to `content_policy`, its 429 (with `retry-after`) to `rate_limit`, both in `openai_errors`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson

from ..errors import UpstreamError
from ..reasoning import openai_body
from ..settings import ProviderConfig
from .azure_auth import TokenCredential, TokenError, entra_tokens, uses_identity
from .base import JSON
from .cache_control import strip_cache_control
from .http import HTTPTransport, Scrubber
from .openai_compat import OpenAICompatProvider

V1 = "v1"


def auth_headers(config: ProviderConfig, secret: str | None) -> dict[str, str]:
    """`api-key: KEY`, or `Authorization: Bearer TOKEN` for Entra ID; none without a secret."""
    if not secret:
        return {}
    if config.azure.auth == "entra":
        return {"authorization": f"Bearer {secret}"}
    return {"api-key": secret}


class AzureOpenAIProvider(OpenAICompatProvider):
    """One Azure OpenAI resource; each model maps to one of its deployments."""

    def __init__(self, name: str, config: ProviderConfig, api_key: str | None, *,
                 environ: Mapping[str, str] | None = None,
                 credential: TokenCredential | None = None):
        """`environ`: where `azure.client_secret_env` is read; `credential`: an azure-identity
        style credential to use instead of the configured one."""
        super().__init__(name, config, None)
        self.http = HTTPTransport(config, auth_headers(config, api_key))
        self._keep_marks = False  # Azure takes no `cache_control` marks
        self.tokens, self.problem = (entra_tokens(config, environ or {}, credential)
                                     if uses_identity(config) else (None, ""))
        self._scrubbing = ""

    async def _auth(self, model: str) -> Mapping[str, str]:
        if not uses_identity(self.config):
            return {}
        if self.tokens is None:
            raise UpstreamError("auth", f"{self.name}: {self.problem}", provider=self.name,
                                model=model)
        try:
            token = await self.tokens.token()
        except TokenError as exc:
            raise UpstreamError("auth", f"{self.name}: {exc}", provider=self.name,
                                model=model) from None
        headers = {"authorization": f"Bearer {token}"}
        if token != self._scrubbing:  # a new token: scrub it from what comes back
            self._scrubbing = token
            self.http.scrub = Scrubber.of({**self.http.headers, **headers})
        return headers

    def deployment(self, upstream_model: str) -> str:
        """The Azure deployment serving `upstream_model`."""
        return self.config.azure.deployments.get(upstream_model, upstream_model)

    def _path(self, upstream_model: str) -> str:
        version = self.config.azure.api_version
        if version == V1:
            return "/openai/v1/chat/completions"
        deployment = quote(self.deployment(upstream_model), safe="")
        return (f"/openai/deployments/{deployment}/chat/completions"
                f"?api-version={quote(version, safe='')}")

    def _payload(self, body: Mapping[str, Any], upstream_model: str, stream: bool) -> bytes:
        # The versioned API takes the model from the path; v1 wants the deployment as `model`.
        return orjson.dumps({**strip_cache_control(openai_body(body)),
                             "model": self.deployment(upstream_model), "stream": stream})

    def _keep(self, chunk: JSON) -> bool:
        return bool(chunk.get("choices") or chunk.get("usage"))  # not filter results alone
