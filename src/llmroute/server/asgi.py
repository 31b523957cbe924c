"""Raw ASGI for the hot routes (issue 17): the request's headers as a dict, its body read straight
from `receive` (413 over the limit), a JSON answer or a server-sent event stream written straight to
`send` with header blocks built once (only the per-request headers are encoded per request), and a
client that leaves mid-stream noticed without a task group. No framework objects per request.

What Starlette's StreamingResponse did with a task group (listen for `http.disconnect` while the
body is sent, cancel the sending when it comes) `Departure` does with one listener task whose
completion cancels the sending task: the stream's iterator is cancelled where it waits (the
gateway's relay then records the request as closed by the client), and the cancellation is
absorbed here."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from starlette.types import Receive, Send

from ..errors import ClientClosedError, RequestTooLargeError
from ..header_names import REQUEST_NAMES
from ..ledger.entry import money_text
from ..outcome import Outcome
from ..routers.figures import three_places
from .coalesce import ready_batches

T = TypeVar("T")
RawHeaders = list[tuple[bytes, bytes]]

JSON_TYPE: Final = (b"content-type", b"application/json")
#: A stream's frames sent in one body message at most (when that many were ready at once); the
#: first message holds two at most (the role chunk and the first token: TTFT never waits for the
#: rest of a read's chunks to be relayed).
BATCH: Final = 8
FIRST_BATCH: Final = 2
#: A stream's static headers, encoded once (Starlette's `text/event-stream` adds the charset).
SSE_HEAD: Final[tuple[tuple[bytes, bytes], ...]] = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no"))


def request_headers(scope: Mapping[str, object]) -> dict[str, str]:
    """The request's headers by (lower-case, as ASGI sends them) name; the first of repeated
    headers wins, as with Starlette's `Headers.get`. A known name is looked up (`header_names.REQUEST_NAMES`),
    any other decoded."""
    raw: RawHeaders = scope["headers"]  # type: ignore[assignment]
    known = REQUEST_NAMES.get
    return {known(name) or name.decode("latin-1"): value.decode("latin-1")
            for name, value in reversed(raw)}


def encode_headers(headers: Mapping[str, str]) -> RawHeaders:
    """Per-request headers as ASGI wants them."""
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


def outcome_head(outcome: Outcome) -> RawHeaders:
    """`encode_headers(outcome.headers())`, built as bytes directly (no dict) when no stage added
    headers of its own (with some, one of theirs may replace a name's value in place: the dict
    is built as before); the confidence and the cost through their exact, cheaper twins of
    `:.3f` and `:f` (`three_places`, `money_text`)."""
    if outcome.extra_headers:
        return encode_headers(outcome.headers())
    plan = outcome.plan
    head = [(b"x-llmroute-request-id", outcome.request_id.encode("latin-1")),
            (b"x-llmroute-model", outcome.model.encode("latin-1")),
            (b"x-llmroute-tier", plan.tier.encode("latin-1")),
            (b"x-llmroute-router", plan.router.encode("latin-1")),
            (b"x-llmroute-confidence", three_places(plan.confidence).encode("latin-1")),
            (b"x-llmroute-attempts", b"%d" % sum(not a.skipped for a in outcome.attempts))]
    if plan.policy:
        head.append((b"x-llmroute-policy", plan.policy.encode("latin-1")))
    if plan.affinity:
        head.append((b"x-llmroute-affinity", plan.affinity.encode("latin-1")))
    if plan.router_attempts:
        routed = sum(not a.skipped for a in plan.router_attempts)
        head.append((b"x-llmroute-router-attempts", b"%d" % routed))
    if outcome.finished:
        cost = outcome.cost_usd
        head.append((b"x-llmroute-cost-usd",
                     b"unpriced" if cost is None else money_text(cost).encode("latin-1")))
    return head


async def read_body(headers: Mapping[str, str], receive: Receive, limit: int) -> bytes:
    """The request body, refusing (413) anything over `limit` bytes without reading it all; a
    client gone before its body arrived (or cut off by a read deadline) is a ClientClosedError."""
    declared = headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientClosedError("The client went away before its request body arrived.")
        part: bytes = message.get("body", b"")
        size += len(part)
        if size > limit:
            raise _too_large(limit)
        if not message.get("more_body", False):
            return b"".join((*parts, part)) if parts else part
        parts.append(part)


def _too_large(limit: int) -> RequestTooLargeError:
    return RequestTooLargeError(f"Request body too large: the limit is {limit} bytes.")


async def send_json(send: Send, status: int, body: bytes, headers: RawHeaders) -> None:
    """A whole JSON answer: `headers` are the per-request ones (extended in place)."""
    headers.append((b"content-length", b"%d" % len(body)))
    headers.append(JSON_TYPE)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@dataclass(frozen=True)
class EventWire(Generic[T]):
    """How one API writes its stream: each item's frame, the frame that ends a stream that failed
    mid-way (None: the items end a failed stream themselves), and the frame after the last item."""

    encode: Callable[[T], bytes]
    failed: Callable[[Exception], bytes] | None
    done: bytes = b""


class Departure:
    """Watches for the client leaving while a stream is sent; when it does, the sending task is
    cancelled (at whatever it awaits: the upstream's next chunk, or a paused socket)."""

    def __init__(self, receive: Receive):
        self.gone = False
        self._task = asyncio.current_task()
        self._listener = asyncio.ensure_future(_disconnected(receive))
        self._listener.add_done_callback(self._left)

    def _left(self, listener: asyncio.Future[None]) -> None:
        if listener.cancelled() or listener.exception() is not None or self._task is None:
            return
        self.gone = True
        self._task.cancel()

    def stop(self) -> None:
        """Stop watching (before the last frame: a finished response reads as a disconnect)."""
        self._listener.remove_done_callback(self._left)
        self._listener.cancel()

    def absorb(self) -> bool:
        """After a CancelledError: True (and the cancellation undone) when it was ours."""
        if not self.gone or self._task is None:
            return False
        self._task.uncancel()
        return True


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def send_stream(receive: Receive, send: Send, headers: RawHeaders,
                      items: AsyncIterator[T], wire: EventWire[T]) -> None:
    """A server-sent event stream: `headers` are the per-request ones (extended in place); each
    item is written as it arrives, straight to `send`."""
    headers.extend(SSE_HEAD)
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    departure = Departure(receive)
    try:
        tail = await _relay(send, items, wire)
        departure.stop()
        await send({"type": "http.response.body", "body": tail, "more_body": False})
    except asyncio.CancelledError:
        if isinstance(items, AsyncGenerator):  # cancelled in `send`: the items wait at a yield
            await items.aclose()
        if not departure.absorb():
            raise
    finally:
        departure.stop()


async def _relay(send: Send, items: AsyncIterator[T], wire: EventWire[T]) -> bytes:
    """Send every item's frame; the frames that end the stream. Items ready at once (several
    chunks of one upstream read) go out in one body message, sent before the next wait
    (`coalesce.ready_batches`): one `send` and one socket write for them, and no item held."""
    encode = wire.encode

    def flush(batch: list[T]) -> Awaitable[None]:  # send's own awaitable: no coroutine per batch
        body = encode(batch[0]) if len(batch) == 1 else b"".join(map(encode, batch))
        return send({"type": "http.response.body", "body": body, "more_body": True})

    if wire.failed is None:
        last = await ready_batches(items, flush, BATCH, FIRST_BATCH, eager=True)
        return b"".join((*map(encode, last), wire.done))
    try:
        last = await ready_batches(items, flush, BATCH, FIRST_BATCH, eager=True)
    except Exception as exc:
        return wire.failed(exc)
    return b"".join((*map(encode, last), wire.done))
