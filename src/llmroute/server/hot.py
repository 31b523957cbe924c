"""The hot routes as raw ASGI endpoints (issue 17): `POST /v1/chat/completions`, `/v1/responses`
and `/v1/messages` (and their unprefixed twins), streaming or not. The app dispatches them before
Starlette (`app.GatewayApp`); Starlette's table holds the same endpoints, for whatever reaches it.

Each does what the Starlette route and its two middlewares did: a request id before anything else,
auth (401), the body under the size limit (413), validation (400 naming the param), the gateway
(deadline, limits, routing, fallbacks, ledger write-ahead log before the answer completes, metrics),
our errors answered in the API's shape with the request id, anything else logged and a 500; a stream
stops (and is recorded as closed by the client) when the client leaves."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson
from starlette.types import Receive, Scope, Send

from ..chat import ChatRequest, chat_request, parse_json, with_headers
from ..errors import LLMRouteError
from ..gateway import new_request_id
from ..messages_reply import MessageStream, message_events, sse_event, to_message
from ..messages_request import messages_request
from ..outcome import Outcome
from ..responses_answer import from_chat
from ..responses_request import chat_body, echoed
from ..responses_stream import ResponsesStream, events
from . import messages
from .app import error_headers, error_payload
from .asgi import EventWire, encode_headers, outcome_head, read_body, request_headers, send_json, send_stream

if TYPE_CHECKING:
    from .app import Endpoints

log = logging.getLogger("llmroute.server")
JSON = dict[str, Any]
Handler = Callable[[Scope, Receive, Send], Awaitable[None]]
Stream = tuple[AsyncIterator[Any], EventWire[Any]]
DONE = b"data: [DONE]\n\n"


def chat_frame(chunk: Mapping[str, Any]) -> bytes:
    """One chat-completion chunk as a server-sent event."""
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def responses_frame(event: Mapping[str, Any]) -> bytes:
    """One Responses API event (`event:` names the type; no [DONE])."""
    return b"event: " + str(event["type"]).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def _frame(event: bytes) -> bytes:
    return event


@dataclass(frozen=True)
class Api:
    """What one API does around the shared chat path: its request -> a ChatRequest, the chat
    answer -> its answer, the chat chunks -> its stream, and its error body."""

    parse: Callable[[Mapping[str, Any], int | None], ChatRequest]
    answer: Callable[[JSON, Outcome, Mapping[str, Any]], Mapping[str, Any]]
    stream: Callable[[AsyncIterator[JSON], Outcome, Mapping[str, Any]], Stream]
    error_body: Callable[[LLMRouteError], Mapping[str, object]]


def _chat_stream(chunks: AsyncIterator[JSON], outcome: Outcome, data: Mapping[str, Any]) -> Stream:
    rid = outcome.request_id

    def failed(exc: Exception) -> bytes:  # never a clean-looking truncated answer
        if isinstance(exc, LLMRouteError):
            log.warning("stream %s failed mid-way: %s", rid, exc.message,
                        extra={"request_id": rid})
            return chat_frame(exc.to_dict())
        log.error("stream %s failed mid-way", rid, exc_info=exc, extra={"request_id": rid})
        return chat_frame(LLMRouteError("The upstream stream failed.").to_dict())

    return chunks, EventWire(chat_frame, failed, DONE)


def _responses_stream(chunks: AsyncIterator[JSON], outcome: Outcome, data: Mapping[str, Any]
                      ) -> Stream:
    state = ResponsesStream(outcome.request_id, outcome.model, echoed(data))
    return events(state, chunks), EventWire(responses_frame, None)  # events() ends a failure


def _messages_stream(chunks: AsyncIterator[JSON], outcome: Outcome, data: Mapping[str, Any]
                     ) -> Stream:
    stream = MessageStream(outcome.model, outcome.request_id)

    def failed(exc: Exception) -> bytes:
        if isinstance(exc, LLMRouteError):
            log.warning("stream %s failed mid-way: %s", stream.id, exc.message)
            return sse_event("error", {"error": messages.error_body(exc)["error"]})
        log.error("stream %s failed mid-way", stream.id, exc_info=exc)
        return sse_event("error", {"error": {"type": "api_error",
                                                      "message": "The upstream stream failed."}})

    return message_events(stream, chunks), EventWire(_frame, failed)


CHAT = Api(parse=lambda data, most: chat_request(data, max_messages=most),
           answer=lambda response, outcome, data: response,
           stream=_chat_stream, error_body=error_payload)
RESPONSES = Api(parse=lambda data, most: chat_request(chat_body(data), max_messages=most),
                answer=lambda response, outcome, data: from_chat(response, outcome.request_id,
                                                                 echoed(data)),
                stream=_responses_stream, error_body=error_payload)
MESSAGES = Api(parse=lambda data, most: messages_request(data, max_messages=most),
               answer=lambda response, outcome, data: to_message(response),
               stream=_messages_stream, error_body=messages.error_body)


class HotRoutes:
    """The hot endpoints over one app's gateway, keys and input limits."""

    def __init__(self, endpoints: Endpoints):
        self.e = endpoints
        self.user_header = endpoints.user_header.lower()  # request_headers' names are lower-case

    def table(self) -> dict[str, Handler]:
        """Path -> endpoint (POST only)."""
        chat, responses, msgs = self.endpoint(CHAT), self.endpoint(RESPONSES), self.endpoint(MESSAGES)
        return {"/v1/chat/completions": chat, "/chat/completions": chat,
                "/v1/responses": responses, "/responses": responses, "/v1/messages": msgs}

    def endpoint(self, api: Api) -> Handler:
        """The raw ASGI endpoint of one API: `serve` with the API bound (a partial: its call is
        `serve`'s coroutine itself, no coroutine around it; Starlette's table wraps it in `Raw`)."""
        return partial(self.serve, api)

    async def serve(self, api: Api, scope: Scope, receive: Receive, send: Send) -> None:
        """One request: everything up to the answer's first byte is guarded (errors become
        answers); then the JSON body or the stream."""
        rid = new_request_id()
        try:
            headers = request_headers(scope)
            principal = self.e.keys.authenticate(headers)
            data = parse_json(await read_body(headers, receive, self.e.limit))
            req = self._routed(api.parse(data, self.e.max_messages), headers)
            if req.stream:
                outcome, chunks = await self.e.gw.stream(req, principal, rid, defer=True)
                stream: Stream | None = api.stream(chunks, outcome, data)
                body = b""
            else:
                # the bookkeeping the answer need not wait for runs once it is sent
                response, outcome = await self.e.gw.complete(req, principal, rid, defer=True)
                body, stream = orjson.dumps(api.answer(response, outcome, data)), None
            head = outcome_head(outcome)
        except Exception as exc:
            await self._error(api, send, exc, rid, scope["path"])
            return
        if stream is None:
            await send_json(send, 200, body, head)
        else:
            await send_stream(receive, send, head, *stream)

    def _routed(self, req: ChatRequest, headers: Mapping[str, str]) -> ChatRequest:
        """`req` with the routing and caching controls of its headers, and its end user."""
        req = with_headers(req, headers, lowered=True)  # request_headers' names
        if req.user is None and self.user_header in headers:
            req = replace(req, user=headers[self.user_header])
        return req

    async def _error(self, api: Api, send: Send, exc: Exception, rid: str, path: str) -> None:
        """Our error in the API's shape (with the request id); anything else logged and the
        OpenAI-shaped 500, as Starlette's error middleware answered it."""
        if isinstance(exc, LLMRouteError):
            body, headers = api.error_body(exc), error_headers(exc, rid)
        else:
            log.error("unhandled error on POST %s", path, exc_info=exc)
            exc = LLMRouteError("The gateway hit an internal error; it has been logged.")
            body, headers = error_payload(exc), error_headers(exc)
        await send_json(send, exc.status, orjson.dumps(body), encode_headers(headers))
