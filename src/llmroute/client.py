"""`llmroute.AsyncClient` / `llmroute.Client`: drop-ins for the OpenAI SDK's clients that route and call
upstreams in the caller's process, through the same Gateway the server uses.

    client = llmroute.Client()                        # llmroute.yaml, $LLMROUTE_CONFIG or defaults
    reply = client.chat.completions.create(model="auto", messages=[...])
    print(reply.model, reply.choices[0].message.content)

With the `openai` package installed, answers are the SDK's own types (`ChatCompletion`,
`ChatCompletionChunk`) and failures its own exceptions (`openai.BadRequestError`, ...); without it,
plain dicts and llmroute's errors. Each answer carries the routing outcome as `llmroute_outcome`.
Requests are written to the configured ledger, like the server's (started on first use, flushed by
`close()`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures.thread  # noqa: F401  (registers its exit hook first: see _close_at_exit)
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping
from contextvars import copy_context
from pathlib import Path
from typing import Any

from .chat import chat_request, with_headers
from .config import load
from .errors import LLMRouteError
from .gateway import Gateway
from .outcome import Outcome
from .runtime import build_runtime
from .settings import Settings


def _openai() -> Any:
    try:
        import openai
    except ImportError:  # the client works without the SDK, with dicts
        return None
    return openai


def _typed(payload: dict[str, Any], kind: str, outcome: Outcome) -> Any:
    sdk = _openai()
    if sdk is None:
        return {**payload, "llmroute_outcome": outcome}
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    model = ChatCompletion if kind == "completion" else ChatCompletionChunk
    typed = model.model_validate(payload)
    object.__setattr__(typed, "llmroute_outcome", outcome)
    return typed


def _sdk_error(exc: LLMRouteError) -> Exception:
    """The OpenAI SDK's exception for one of our errors (so existing handlers keep working)."""
    sdk = _openai()
    if sdk is None:
        return exc
    import openai._exceptions as sdk_errors

    # openai ≥ 3 builds on `httpx2`, older releases on `httpx`: use whichever it imported.
    namespace: dict[str, Any] = vars(sdk_errors)
    http = namespace.get("httpx2") or namespace["httpx"]
    classes = {400: sdk.BadRequestError, 401: sdk.AuthenticationError,
               403: sdk.PermissionDeniedError, 404: sdk.NotFoundError, 409: sdk.ConflictError,
               413: sdk.APIStatusError, 422: sdk.UnprocessableEntityError,
               429: sdk.RateLimitError}
    cls = classes.get(exc.status, sdk.InternalServerError if exc.status >= 500 else
                      sdk.APIStatusError)
    request = http.Request("POST", "http://llmroute.in-process/v1/chat/completions")
    response = http.Response(exc.status, request=request, json=exc.to_dict())
    error: Exception = cls(exc.message, response=response, body=exc.to_dict()["error"])
    return error


def _params(params: Mapping[str, Any]) -> dict[str, Any]:
    """SDK-style keyword arguments as a request body (`extra_body` merged, SDK-only keys dropped)."""
    body = {k: v for k, v in params.items()
            if k not in {"extra_body", "extra_headers", "extra_query", "timeout"} and v is not None}
    body.update(params.get("extra_body") or {})
    return body


class AsyncCompletions:
    """`client.chat.completions` of the async client."""

    def __init__(self, gateway: Gateway, ready: Callable[[], Awaitable[None]]):
        self._gateway = gateway
        self._ready = ready

    async def create(self, **params: Any) -> Any:
        """Like `openai.AsyncOpenAI().chat.completions.create`; `model="auto"` routes."""
        await self._ready()
        try:
            req = with_headers(chat_request(_params(params)), params.get("extra_headers") or {})
            if req.stream:
                outcome, chunks = await self._gateway.stream(req)
                return self._typed_stream(outcome, chunks)
            response, outcome = await self._gateway.complete(req)
        except LLMRouteError as exc:
            raise _sdk_error(exc) from None
        return _typed(response, "completion", outcome)

    async def _typed_stream(self, outcome: Outcome, chunks: AsyncIterator[dict[str, Any]]
                            ) -> AsyncIterator[Any]:
        try:
            async for chunk in chunks:
                yield _typed(chunk, "chunk", outcome)
        except LLMRouteError as exc:
            raise _sdk_error(exc) from None
        finally:  # closed early too: close the gateway's stream now, in order, not when collected
            closer = getattr(chunks, "aclose", None)
            if closer is not None:
                await closer()


class _Chat:
    def __init__(self, completions: Any):
        self.completions = completions


class AsyncClient:
    """In-process, async drop-in for `openai.AsyncOpenAI` (chat completions)."""

    def __init__(self, config: str | Path | Settings | None = None, *,
                 environ: Mapping[str, str] | None = None):
        settings = config if isinstance(config, Settings) else load(config)
        self._runtime = build_runtime(settings, environ=environ, metrics=False, background=False,
                                      served=False)
        self.gateway: Gateway = self._runtime.gateway
        self._started = False
        self.chat = _Chat(AsyncCompletions(self.gateway, self._ready))

    async def _ready(self) -> None:
        """Start the ledger (migrations, spool replay) on first use."""
        if not self._started:
            self._started = True
            await self._runtime.start()

    async def close(self) -> None:
        """Flush the ledger and close upstream connection pools."""
        await self._runtime.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class Completions:
    """`client.chat.completions` of the sync client: the async one, run on a private loop."""

    def __init__(self, inner: AsyncCompletions, runner: asyncio.Runner):
        self._inner = inner
        self._runner = runner
        #: The streams handed out and still referenced (closed first when the client closes).
        self.streams: weakref.WeakSet[Generator[Any, None, None]] = weakref.WeakSet()

    def create(self, **params: Any) -> Any:
        """Like `openai.OpenAI().chat.completions.create`; a stream is a plain iterator."""
        # the caller's context (e.g. its current span), not the one the loop copied at its start
        result = self._runner.run(self._inner.create(**params), context=copy_context())
        if params.get("stream"):
            stream = self._iterate(result)
            self.streams.add(stream)
            return stream
        return result

    def _iterate(self, chunks: AsyncIterator[Any]) -> Generator[Any, None, None]:
        loop = self._runner.get_loop()
        try:
            while True:
                try:
                    yield self._runner.run(anext(chunks),  # type: ignore[arg-type]
                                           context=copy_context())
                except StopAsyncIteration:
                    return
        finally:
            if not loop.is_closed():  # else the client closed it, and the stream with it
                self._runner.run(chunks.aclose())  # type: ignore[attr-defined]


def _close_sync(runner: asyncio.Runner, client: AsyncClient,
                streams: weakref.WeakSet[Generator[Any, None, None]]) -> None:
    """Close a sync Client: its open streams, its async core on its private loop, then that loop."""

    def close() -> None:
        with runner:  # closed on the way out, even if closing the client fails
            for stream in list(streams):
                stream.close()
            runner.run(client.close())

    try:
        asyncio.get_running_loop()
    except RuntimeError:  # the usual case: no event loop runs in this thread
        close()
        return
    worker = threading.Thread(target=close)  # collected inside async code: not on that loop
    worker.start()
    worker.join()


def _close_at_exit(closer: weakref.finalize[..., None]) -> None:
    """Run `closer` at interpreter exit, before thread pools stop (closing the ledger needs them).

    `concurrent.futures` stops every thread pool in a `threading` exit hook, which runs before
    `atexit` (and so before the finalizer's own exit hook); hooks run last-registered first, and
    concurrent.futures.thread, imported above, registered its hook before any of ours.
    """
    register: Callable[[Callable[[], object]], None] | None = getattr(
        threading, "_register_atexit", None)  # CPython's; elsewhere the finalizer's atexit
    if register is not None:
        closer.atexit = False
        register(closer)


class Client:
    """In-process, synchronous drop-in for `openai.OpenAI` (chat completions).

    `close()` (or `with`) closes it; so does the interpreter's exit, or the garbage collector once
    neither the client nor a stream it returned is referenced: no unclosed sessions, and the ledger
    flushed, even for `llmroute.Client().chat.completions.create(...)`.
    """

    def __init__(self, config: str | Path | Settings | None = None, *,
                 environ: Mapping[str, str] | None = None):
        self._runner = asyncio.Runner()
        self._async = AsyncClient(config, environ=environ)
        self.gateway = self._async.gateway
        self.chat = _Chat(Completions(self._async.chat.completions, self._runner))
        # Tied to `completions`, which this client and every stream iterator it returns keep alive.
        completions = self.chat.completions
        self._closer = weakref.finalize(completions, _close_sync, self._runner, self._async,
                                        completions.streams)
        _close_at_exit(self._closer)

    def close(self) -> None:
        """Flush the ledger, close upstream connections and the private event loop (once)."""
        self._closer()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
