"""A fake upstream LLM provider over real HTTP, for tests, benchmarks and demos.

`FakeUpstream` serves the OpenAI Chat Completions API (`POST /v1/chat/completions`,
`GET /v1/models`), the Anthropic Messages API (`POST /v1/messages`), AWS Bedrock's Converse /
ConverseStream (`POST /model/{modelId}/converse[-stream]`, SigV4-verified), Azure OpenAI, Gemini
and Vertex AI (`_cloud_routes`: `tokens` holds Vertex's service accounts) on 127.0.0.1 with a
free port, from a background thread, so sync and async tests alike can point real SDKs (or the
gateway) at it. Answers are deterministic echoes; per-model scripted behaviours
(`llmroute.testing.behaviours`) make it fail, hang, cut or slow streams like real providers;
every request is recorded.

    with FakeUpstream() as up:
        up.script("gpt-4o", rate_limited(), Ok())
        client = openai.OpenAI(base_url=up.openai_base_url, api_key="x")
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmroute.testing import _embeddings_wire
from llmroute.testing._anthropic_wire import AnthropicWire
from llmroute.testing._bedrock_wire import BedrockWire, check_signature
from llmroute.testing._bedrock_wire import cached as bedrock_cached
from llmroute.testing._cloud_routes import CloudRoutes
from llmroute.testing._gemini_wire import as_messages
from llmroute.testing._openai_wire import OpenAIWire
from llmroute.testing._prompt_cache import PromptCache
from llmroute.testing._responses import AbortResponse, HangResponse, StreamPlan, StreamResponse
from llmroute.testing._server import ServerThread
from llmroute.testing._state import RecordedRequest, State
from llmroute.testing._vertex import TokenIssuer
from llmroute.testing._wire import (
    CacheUsage,
    JsonObject,
    Reply,
    Wire,
    count_tokens,
    default_answer,
    dumps,
    make_reply,
    parse_object,
    prompt_tokens_for,
    text_of,
)
from llmroute.testing.behaviours import (
    Behaviour,
    CutStream,
    Error,
    ErrorMidStream,
    Hang,
    Ok,
    Reset,
    Scripted,
    SlowStream,
    overloaded,
    unauthorized,
)

__all__ = [
    "DEFAULT_MODELS",
    "FakeUpstream",
    "RecordedRequest",
    "count_tokens",
    "default_answer",
    "prompt_tokens_for",
]

DEFAULT_MODELS: tuple[str, ...] = ("gpt-4o-mini", "gpt-4o", "claude-3-5-haiku-latest")
_OPENAI = OpenAIWire()
_ANTHROPIC = AnthropicWire()
_BEDROCK = BedrockWire()
_JSON = "application/json"


class FakeUpstream(CloudRoutes):
    """A fake OpenAI + Anthropic upstream on a real socket. Use as a context manager, or call
    `start()` / `stop()`.

    `api_key`: when set, requests must carry it (OpenAI `Authorization: Bearer KEY`,
    Anthropic `x-api-key: KEY`) or get a 401 in the provider's shape.
    `models`: listed by `GET /v1/models` (with every model scripted or requested so far).
    `record`: keep full request records (turn off for long benchmarks; counts are kept).
    `graceful_timeout_s`: how long `stop()` lets running handlers finish before cancelling.
    `port`: 0 (the default) lets the OS pick a free one; `port` holds it once started.
    `seed`: seeds the RNG that `Chaos` behaviours draw their faults from (reset by `reset()`).
    `prompt_cache_min_tokens`: the shortest prefix the simulated Anthropic prompt cache stores at
    a `cache_control` breakpoint; `clock`: the prompt caches' clock (seconds), for TTL tests.
    See `_prompt_cache` for how the fake caches prompts.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        models: Sequence[str] = DEFAULT_MODELS,
        record: bool = True,
        graceful_timeout_s: float = 0.5,
        port: int = 0,
        seed: int | None = None,
        prompt_cache_min_tokens: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_key = api_key
        self._models = list(models)
        self._state = State(record, seed)
        self.tokens = TokenIssuer()
        self.prompt_cache = PromptCache(clock, prompt_cache_min_tokens)
        self._seq = itertools.count(1)
        self.app = self._build_app()
        self._server: ServerThread | None = None
        self._graceful_timeout_s = graceful_timeout_s
        self.port = port

    # ----- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeUpstream:
        """Start serving; returns once the server accepts connections."""
        if self._server is None:
            server = ServerThread(
                self.app, port=self.port, graceful_timeout_s=self._graceful_timeout_s
            )
            self.port = server.start()
            self._server = server
        return self

    def stop(self) -> None:
        """Stop serving (promptly: hung handlers are woken and their connections dropped)."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT`."""
        if self._server is None:
            raise RuntimeError("FakeUpstream is not running")
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """Base URL for the OpenAI SDK (`.../v1`)."""
        return self.base_url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        """Base URL for the Anthropic SDK (it appends `/v1/messages` itself)."""
        return self.base_url

    # ----- scripting -------------------------------------------------------------------------

    def script(self, model: str, *behaviours: Scripted) -> None:
        """Queue behaviours for `model`, one consumed per request; then it answers normally
        (or with its `set_default` behaviour). A `Chaos` draws the request's behaviour."""
        self._state.script(model, behaviours)

    def set_default(self, model: str, behaviour: Scripted | None) -> None:
        """Persistent behaviour for `model` once its script is empty; `"*"` applies to every
        model without its own default; None removes it. `Chaos` here is the chaos mode."""
        self._state.set_default(model, behaviour)

    def pending(self, model: str) -> int:
        """How many scripted behaviours `model` has left."""
        return self._state.pending(model)

    def reset(self) -> None:
        """Forget scripts, defaults, recorded requests, counts, the prompt caches and Vertex's
        service accounts and tokens."""
        self._state.reset()
        self.prompt_cache.reset()
        self.tokens.reset()

    # ----- inspection ------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        return self._state.records()

    def requests_for(self, model: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.model == model]

    @property
    def calls(self) -> dict[str, int]:
        """Chat/messages requests received per model (a copy)."""
        return self._state.counts()[0]

    def call_count(self, model: str | None = None) -> int:
        """Requests received for `model`, or in total (including invalid ones) when None."""
        counts, total = self._state.counts()
        return total if model is None else counts.get(model, 0)

    @property
    def faults(self) -> dict[str, int]:
        """How many requests each `Chaos` fault was drawn for (`"ok"`: no fault), since the
        last `reset()`."""
        return self._state.faults()

    def wait_for_requests(self, count: int, timeout_s: float = 5.0) -> bool:
        """Block until `count` chat/messages requests in total have arrived (False on timeout)."""
        return self._state.wait_total(count, timeout_s)

    # ----- HTTP ------------------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        async def not_found(request: Request, exc: Exception) -> Response:
            status = exc.status_code if isinstance(exc, HTTPException) else 404
            message = f"Invalid URL ({request.method} {request.url.path})"
            return self._error(_OPENAI, Error(status, message))

        return Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/v1/models", self._list_models, methods=["GET"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
                Route("/model/{model_id:path}/converse", self._bedrock, methods=["POST"]),
                Route("/model/{model_id:path}/converse-stream", self._bedrock, methods=["POST"]),
                *self.cloud_routes(),
            ],
            exception_handlers={404: not_found, 405: not_found},
        )

    async def _chat(self, request: Request) -> Response:
        return await self._handle(request, _OPENAI)

    async def _messages(self, request: Request) -> Response:
        return await self._handle(request, _ANTHROPIC)

    async def _embeddings(self, request: Request) -> Response:
        """OpenAI embeddings: deterministic vectors; a scripted Error answers instead."""
        body = parse_object(await request.body())
        model = body.get("model") if body is not None else None
        self._record(request, _OPENAI, model if isinstance(model, str) else None, body)
        if self.api_key is not None and not _OPENAI.authorized(request.headers, self.api_key):
            return self._error(_OPENAI, unauthorized())
        problem = _embeddings_wire.validate(body)
        if problem is not None or body is None or not isinstance(model, str):
            return self._error(_OPENAI, problem or Error(400, "invalid request"))
        behaviour = self._state.next_behaviour(model)
        if isinstance(behaviour, Error):
            return self._error(_OPENAI, behaviour)
        return Response(dumps(_embeddings_wire.embeddings(body, model)), media_type=_JSON)

    async def _bedrock(self, request: Request) -> Response:
        """Bedrock Converse / ConverseStream: the model is in the path, and the request must be
        SigV4-signed for `FAKE_AWS_CREDENTIALS` (`_bedrock_wire.check_signature`)."""
        raw = await request.body()
        model = str(request.path_params["model_id"])
        body = parse_object(raw)
        self._record(request, _BEDROCK, model, body)
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        denied = check_signature(request.method, raw_path.decode(), request.url.query,
                                 request.headers, raw, datetime.now(UTC),
                                 api_key=self.api_key)
        problem = denied or _BEDROCK.validate(body)
        if problem is not None or body is None:
            return self._error(_BEDROCK, problem or Error(400, "invalid request"))
        stream = request.url.path.endswith("/converse-stream")
        behaviour = self._state.next_behaviour(model)
        return await self._perform(behaviour, _BEDROCK, {**body, "model": model, "stream": stream},
                                   model)

    async def _list_models(self, request: Request) -> Response:
        wire: Wire = _ANTHROPIC if "anthropic-version" in request.headers else _OPENAI
        if self.api_key is not None and not wire.authorized(request.headers, self.api_key):
            return self._error(wire, unauthorized())
        known = dict.fromkeys([*self._models, *self.calls])
        return Response(wire.models(list(known)), media_type=_JSON)

    async def _handle(self, request: Request, wire: Wire, *, model: str | None = None,
                      stream: bool | None = None, authorized: bool = False) -> Response:
        """`model`: from the path (Azure, Gemini), else the body's; `stream`: from the path;
        `authorized`: the route checked the request's credentials itself (an Entra token)."""
        body = parse_object(await request.body())
        if model is None:
            model = body.get("model") if body is not None else None
            model = model if isinstance(model, str) else None
        self._record(request, wire, model, body)
        if not authorized and self.api_key is not None and not wire.authorized(request.headers,
                                                                               self.api_key):
            return self._error(wire, unauthorized())
        problem = wire.validate(body)
        if problem is not None or body is None or model is None:
            return self._error(wire, problem or Error(400, "invalid request"))
        behaviour = self._state.next_behaviour(model)
        if stream is not None:
            body = {**body, "stream": stream}
        return await self._perform(behaviour, wire, body, model)

    def _record(self, request: Request, wire: Wire, model: str | None, body: Any) -> None:
        record = None
        if self._state.record_bodies:
            record = RecordedRequest(
                wire.name, request.url.path, model, dict(request.headers), body, time.time()
            )
        self._state.record(record, model)

    def _error(self, wire: Wire, err: Error) -> Response:
        status, content, headers = wire.error(err.for_protocol(wire.name), self._request_id())
        return Response(content, status, headers, media_type=_JSON)

    def _request_id(self) -> str:
        return f"req_fake{next(self._seq)}"

    def _stop_event(self) -> asyncio.Event:
        assert self._server is not None
        return self._server.stop_event

    async def _pause(self, seconds: float) -> None:
        """Sleep `seconds`, cut short when the server stops."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_event().wait(), seconds)

    async def _perform(
        self, behaviour: Behaviour, wire: Wire, body: JsonObject, model: str
    ) -> Response:
        stream = body.get("stream") is True
        if isinstance(behaviour, Error):
            await self._pause(behaviour.delay_s)
            return self._error(wire, behaviour)
        if isinstance(behaviour, Reset):
            return AbortResponse(self._stop_event(), reset=True)
        if isinstance(behaviour, Hang) and (not stream or behaviour.after_chunks is None):
            return HangResponse(self._stop_event())
        if isinstance(behaviour, CutStream) and not stream:
            return AbortResponse(self._stop_event())
        if isinstance(behaviour, ErrorMidStream) and not stream:
            return self._error(wire, behaviour.error or overloaded())
        if isinstance(behaviour, Ok):
            await self._pause(behaviour.delay_s)
        elif isinstance(behaviour, SlowStream) and not stream:
            await self._pause(behaviour.chunk_delay_s)
        reply = self._reply(behaviour, wire, body, model)
        headers = {_request_id_header(wire): self._request_id()}
        if wire.name == "bedrock" and stream:
            headers["content-type"] = "application/vnd.amazon.eventstream"
        if not stream:
            return Response(wire.completion(reply), media_type=_JSON, headers=headers)
        plan = _plan(behaviour, wire, wire.stream_frames(reply, body))
        return StreamResponse(plan, self._stop_event(), headers)

    def _reply(self, behaviour: Behaviour, wire: Wire, body: JsonObject, model: str) -> Reply:
        reply = wire.reply(body, model, next(self._seq))
        if isinstance(behaviour, Ok) and (behaviour.text is not None or behaviour.tool_call
                                          or not behaviour.usage):
            text = reply.text if behaviour.text is None else behaviour.text
            tool = behaviour.tool_call or reply.tool_name
            reply = make_reply(model, text, tool, reply.prompt_tokens, reply.seq,
                               usage=behaviour.usage)
        return self._cached(reply, wire, body, model)

    def _cached(self, reply: Reply, wire: Wire, body: JsonObject, model: str) -> Reply:
        """`reply` with what the simulated prompt cache read and wrote for `body`."""
        if wire.name == "anthropic":
            cache = self.prompt_cache.anthropic(body, model)
        elif wire.name == "bedrock":
            cache = bedrock_cached(self.prompt_cache, reply, body, model)
        else:
            google = wire.name in ("gemini", "vertex")
            messages = as_messages(body, system=True) if google else body.get("messages")
            text = "".join(text_of(m.get("content")) for m in messages or ()
                           if isinstance(m, dict))
            read = self.prompt_cache.openai(text, model)
            cache = None if read is None else CacheUsage(reply.prompt_tokens, read)
        if cache is None:
            return reply
        return replace(reply, prompt_tokens=cache.prompt_tokens, cache=cache)


def _request_id_header(wire: Wire) -> str:
    """The response header carrying the request id on `wire`."""
    return {"anthropic": "request-id", "bedrock": "x-amzn-requestid"}.get(wire.name,
                                                                        "x-request-id")


def _plan(behaviour: Behaviour, wire: Wire, frames: list[bytes]) -> StreamPlan:
    """How to send `frames` (the last one terminal) under `behaviour`."""
    if isinstance(behaviour, SlowStream):
        first = behaviour.first_chunk_delay_s
        return StreamPlan(frames, delay_s=behaviour.chunk_delay_s,
                          first_delay_s=behaviour.chunk_delay_s if first is None else first)
    if isinstance(behaviour, CutStream | Hang | ErrorMidStream):
        count = behaviour.after_chunks or 0
        head = frames[: max(0, min(count, len(frames) - 1))]
        if isinstance(behaviour, CutStream):
            return StreamPlan(head, then="abort")
        if isinstance(behaviour, Hang):
            return StreamPlan(head, then="hang")
        err = (behaviour.error or overloaded()).for_protocol(wire.name)
        return StreamPlan([*head, wire.stream_error(err)])
    return StreamPlan(frames)
