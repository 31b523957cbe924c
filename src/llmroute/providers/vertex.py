"""The Vertex AI adapter (the `vertex` extra): Gemini models through Vertex AI, with a service
account. The wire is the Gemini API's (`gemini.py` does the translation); the differences are
the base URL, `https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/
{location}/publishers/google`, and the auth: `api_key_env` names the env var holding the path of
the service account's JSON key file (as GOOGLE_APPLICATION_CREDENTIALS does), and each request
carries `Authorization: Bearer` with an access token from `google_auth.TokenSource` (fetched
when missing, refreshed five minutes before it expires). A missing or unreadable key file is an
`auth` error at the first request (the gateway still starts; other models still serve)."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping

from ..errors import UpstreamError
from ..settings import ProviderConfig
from .gemini import GeminiProvider
from .google_auth import TokenSource, load_service_account
from .http import Scrubber


class VertexProvider(GeminiProvider):
    """One Vertex AI project and location, authenticated as a service account."""

    def __init__(self, name: str, config: ProviderConfig, api_key: str | None):
        super().__init__(name, config, None)
        self.tokens: TokenSource | None = None
        self._scrubbing = ""
        self.problem = "no service-account file: set the env var `api_key_env` names"
        if importlib.util.find_spec("cryptography") is None:
            self.problem = "Vertex AI needs the `vertex` extra: pip install 'llmroute[vertex]'"
        elif api_key:
            try:
                self.tokens = TokenSource(name, config, load_service_account(api_key))
            except ValueError as exc:
                self.problem = str(exc)

    async def _auth(self, model: str) -> Mapping[str, str]:
        if self.tokens is None:
            raise UpstreamError("auth", f"{self.name}: {self.problem}", provider=self.name,
                                model=model)
        headers = {"authorization": f"Bearer {await self.tokens.token(model)}"}
        if headers["authorization"] != self._scrubbing:  # a new token: scrub it from answers
            self._scrubbing = headers["authorization"]
            self.http.scrub = Scrubber.of({**self.http.headers, **headers})
        return headers

    async def aclose(self) -> None:
        """Close the API's and the token endpoint's connection pools."""
        await super().aclose()
        if self.tokens is not None:
            await self.tokens.aclose()
