"""POST /v1/responses: OpenAI's Responses API, served by translating to a chat request
(`responses_request`), routing it through the same `Gateway.complete` / `Gateway.stream` as chat
completions, and translating the answer back (`responses_answer`, `responses_stream`).
POST /v1/embeddings: passed through to the embedding model's deployment (`embeddings.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..chat import parse_json
from ..errors import UnavailableError
from ..gateway import new_request_id
from .app import JSONResponse, read_body

if TYPE_CHECKING:
    from .app import Endpoints


async def create_embeddings(e: Endpoints, request: Request) -> Response:
    """POST /v1/embeddings."""
    request.state.request_id = request_id = new_request_id()
    principal = e.keys.authenticate(request.headers)
    data = parse_json(await read_body(request, e.limit))
    embeddings = e.runtime.embeddings
    if embeddings is None:
        raise UnavailableError("Embeddings are not served by this gateway.")
    answer = await embeddings.create(data, principal, request_id,
                                     request.headers.get(e.user_header))
    return JSONResponse(answer, headers={"x-llmroute-request-id": request_id,
                                         "x-llmroute-model": str(answer["model"])})


def routes(e: Endpoints) -> list[Route]:
    """The embeddings' routes (the Responses API's are hot: `hot.py`)."""

    async def embeddings(request: Request) -> Response:
        return await create_embeddings(e, request)

    return [Route("/v1/embeddings", embeddings, methods=["POST"]),
            Route("/embeddings", embeddings, methods=["POST"])]
