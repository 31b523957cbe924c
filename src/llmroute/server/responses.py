"""POST /v1/responses: OpenAI's Responses API, served by translating to a chat request
(`responses_request`), routing it through the same `Gateway.complete` / `Gateway.stream` as chat
completions, and translating the answer back (`responses_answer`, `responses_stream`).
POST /v1/embeddings: passed through to the embedding model's deployment (`embeddings.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ..chat import ChatRequest, chat_request, parse_json, with_headers
from ..errors import UnavailableError
from ..gateway import new_request_id
from ..responses_answer import from_chat
from ..responses_request import chat_body, echoed
from ..responses_stream import ResponsesStream, events
from .app import SSE_HEADERS, JSONResponse, read_body

if TYPE_CHECKING:
    from .app import Endpoints


async def sse_events(stream: AsyncIterator[Mapping[str, Any]]) -> AsyncIterator[bytes]:
    """Responses events as server-sent events (`event:` names the type; no [DONE])."""
    async for event in stream:
        yield b"event: " + str(event["type"]).encode() + b"\ndata: " + orjson.dumps(event) \
            + b"\n\n"


def _request(e: Endpoints, data: Mapping[str, Any], headers: Mapping[str, str]) -> ChatRequest:
    req = with_headers(chat_request(chat_body(data), max_messages=e.max_messages), headers)
    if req.user is None and e.user_header in headers:
        req = replace(req, user=headers[e.user_header])
    return req


async def create_response(e: Endpoints, request: Request) -> Response:
    """POST /v1/responses, streaming or not."""
    request.state.request_id = request_id = new_request_id()
    principal = e.keys.authenticate(request.headers)
    data = parse_json(await read_body(request, e.limit))
    req = _request(e, data, request.headers)
    echo = echoed(data)
    if req.stream:
        outcome, chunks = await e.gw.stream(req, principal, request_id)
        state = ResponsesStream(outcome.request_id, outcome.model, echo)
        return StreamingResponse(sse_events(events(state, chunks)), media_type="text/event-stream",
                                 headers={**SSE_HEADERS, **outcome.headers()})
    completion, outcome = await e.gw.complete(req, principal, request_id)
    return JSONResponse(from_chat(completion, outcome.request_id, echo), headers=outcome.headers())


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
    """The Responses API's and the embeddings' routes."""

    async def responses(request: Request) -> Response:
        return await create_response(e, request)

    async def embeddings(request: Request) -> Response:
        return await create_embeddings(e, request)

    return [Route("/v1/responses", responses, methods=["POST"]),
            Route("/responses", responses, methods=["POST"]),
            Route("/v1/embeddings", embeddings, methods=["POST"]),
            Route("/embeddings", embeddings, methods=["POST"])]
