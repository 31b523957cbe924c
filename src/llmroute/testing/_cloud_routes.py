"""The fake upstream's routes for Azure OpenAI, Gemini and Vertex AI (a mixin of
`FakeUpstream`): each takes the model from the path and checks auth as the real service does,
then hands the request to the shared handler."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from llmroute.testing._azure_wire import AzureWire, resource_not_found
from llmroute.testing._gemini_wire import GeminiWire
from llmroute.testing._vertex import TokenIssuer, VertexWire
from llmroute.testing._wire import Wire
from llmroute.testing.behaviours import Error

_AZURE = AzureWire()
_GEMINI = GeminiWire()
_VERTEX = VertexWire()
_JSON = "application/json"
VERTEX_PATH = "/v1/projects/{project}/locations/{location}/publishers/google/models/{target}"
TOKEN_PATH = "/token"


class CloudRoutes:
    """Azure, Gemini and Vertex routes over `FakeUpstream._handle`."""

    api_key: str | None
    tokens: TokenIssuer

    async def _handle(self, request: Request, wire: Wire, *, model: str | None = None,
                      stream: bool | None = None, authorized: bool = False) -> Response:
        raise NotImplementedError

    def _error(self, wire: Wire, err: Error) -> Response:
        raise NotImplementedError

    def cloud_routes(self) -> list[Route]:
        return [
            Route("/openai/deployments/{deployment}/chat/completions", self._azure,
                  methods=["POST"]),
            Route("/openai/v1/chat/completions", self._azure, methods=["POST"]),
            Route("/v1beta/models/{target}", self._gemini, methods=["POST"]),
            Route(VERTEX_PATH, self._vertex, methods=["POST"]),
            Route(TOKEN_PATH, self._token, methods=["POST"]),
        ]

    async def _azure(self, request: Request) -> Response:
        """Azure OpenAI: the deployment in the path (the versioned API, which needs
        `api-version`) or `model` in the body (`/openai/v1`)."""
        deployment = request.path_params.get("deployment")
        if deployment is not None and "api-version" not in request.query_params:
            return self._error(_AZURE, resource_not_found())
        # an Entra ID token the issuer minted (`tokens.mint`) passes until it expires; else the
        # api-key check (an expired token is refused like a wrong key: 401)
        entra = self.tokens.valid(request.headers.get("authorization"))
        return await self._handle(request, _AZURE, model=deployment, authorized=entra)

    async def _gemini(self, request: Request) -> Response:
        """Gemini: `models/{model}:generateContent` or `:streamGenerateContent?alt=sse`."""
        if self.api_key is not None and "x-goog-api-key" not in request.headers:
            status, content, headers = _GEMINI.unregistered()
            return Response(content, status, headers, media_type=_JSON)
        return await self._generate(request, _GEMINI)

    async def _vertex(self, request: Request) -> Response:
        """Vertex AI: Gemini's wire under a project and location, for a valid access token."""
        if not self.tokens.valid(request.headers.get("authorization")):
            status, content, headers = _VERTEX.unauthenticated()
            return Response(content, status, headers, media_type=_JSON)
        return await self._generate(request, _VERTEX)

    async def _generate(self, request: Request, wire: GeminiWire) -> Response:
        model, _, method = request.path_params["target"].partition(":")
        if method not in ("generateContent", "streamGenerateContent"):
            return self._error(wire, Error(404, f"Method {method!r} not found", "NOT_FOUND"))
        return await self._handle(request, wire, model=model,
                                  stream=method == "streamGenerateContent")

    async def _token(self, request: Request) -> Response:
        """Google's OAuth token endpoint: a signed service-account assertion for a token."""
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        status, body = self.tokens.exchange(form, str(request.url.replace(query="")))
        return JSONResponse(body, status)
