"""Chat-completion stream chunks translated to the Responses API's streaming events: created,
in_progress, output_item.added, reasoning_summary_part.added, reasoning_summary_text.delta /
.done (a chunk's `reasoning_content`; a `thinking_blocks` delta's signature closes the reasoning
item as its encrypted_content), content_part.added, output_text.delta / .done,
function_call_arguments.delta / .done, content_part.done, output_item.done, and completed with
usage (or failed when the stream breaks). Pure: the caller feeds chunks and sends the events."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import LLMRouteError
from .responses_answer import (
    call_item,
    message_item,
    response_id,
    response_object,
    response_usage,
    status_of,
)
from .responses_reasoning import REDACTED, reasoning_item

JSON = dict[str, Any]
log = logging.getLogger("llmroute.responses")


@dataclass
class _Call:
    index: int  # output index
    item_id: str
    call_id: str
    name: str
    arguments: list[str] = field(default_factory=list)


@dataclass
class ResponsesStream:
    """One stream's translation state: feed it chat chunks, get Responses events."""

    request_id: str
    model: str
    echo: Mapping[str, Any]
    seq: int = 0
    text: list[str] | None = None  # the open message's text (None: no message yet)
    message_index: int = -1
    calls: dict[int, _Call] = field(default_factory=dict)  # chat tool-call index -> call
    thought: list[str] | None = None  # the open reasoning item's text (None: none open)
    thought_index: int = -1
    done: list[tuple[int, JSON]] = field(default_factory=list)
    usage: JSON | None = None
    finish: Any = None

    @property
    def _rid(self) -> str:
        return response_id(self.request_id).removeprefix("resp_")

    def _event(self, kind: str, **fields: Any) -> JSON:
        self.seq += 1
        return {"type": kind, "sequence_number": self.seq - 1, **fields}

    def _snapshot(self, status: str, **extra: Any) -> JSON:
        output = [item for _, item in sorted(self.done, key=lambda d: d[0])]
        return response_object(self.request_id, self.model, self.echo, status=status,
                               output=output, **extra)

    def start(self) -> list[JSON]:
        """response.created and response.in_progress."""
        snapshot = self._snapshot("in_progress")
        return [self._event("response.created", response=snapshot),
                self._event("response.in_progress", response=snapshot)]

    def _next_index(self) -> int:
        return (len(self.done) + (self.text is not None) + len(self.calls)
                + (self.thought is not None))

    def feed(self, chunk: Mapping[str, Any]) -> Iterator[JSON]:
        """The events one chat chunk makes."""
        if isinstance(chunk.get("usage"), Mapping):
            self.usage = response_usage(chunk["usage"])
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content")
            if isinstance(reasoning, str) and reasoning:
                yield from self._thinking(reasoning)
            for block in delta.get("thinking_blocks") or ():
                yield from self._thinking_block(block)
            content = delta.get("content")
            if isinstance(content, str) and content:
                yield from self._end_thinking(None)
                yield from self._text(content)
            for call in delta.get("tool_calls") or ():
                yield from self._end_thinking(None)
                yield from self._call(call)
            if choice.get("finish_reason") is not None:
                self.finish = choice["finish_reason"]

    def _thinking(self, piece: str) -> Iterator[JSON]:
        if self.thought is None:
            self.thought_index = self._next_index()
            self.thought = []
            item_id = f"rs_{self._rid}_{self.thought_index}"
            yield self._event("response.output_item.added", output_index=self.thought_index,
                              item=reasoning_item(item_id, "", None))
            yield self._event("response.reasoning_summary_part.added", item_id=item_id,
                              output_index=self.thought_index, summary_index=0,
                              part={"type": "summary_text", "text": ""})
        self.thought.append(piece)
        yield self._event("response.reasoning_summary_text.delta",
                          item_id=f"rs_{self._rid}_{self.thought_index}",
                          output_index=self.thought_index, summary_index=0, delta=piece)

    def _thinking_block(self, block: Any) -> Iterator[JSON]:
        if not isinstance(block, Mapping):
            return
        if block.get("type") == "redacted_thinking":
            yield from self._end_thinking(None)
            self.thought_index, self.thought = self._next_index(), []
            yield from self._end_thinking(REDACTED + str(block.get("data")), announce=True)
        elif block.get("signature"):
            if self.thought is None:  # a signature with no text before it
                self.thought_index, self.thought = self._next_index(), []
                yield from self._end_thinking(str(block["signature"]), announce=True)
            else:
                yield from self._end_thinking(str(block["signature"]))

    def _end_thinking(self, signature: str | None, *, announce: bool = False) -> Iterator[JSON]:
        """Close the open reasoning item (`announce`: it was never announced as added)."""
        if self.thought is None:
            return
        item_id, text = f"rs_{self._rid}_{self.thought_index}", "".join(self.thought)
        item = reasoning_item(item_id, text, signature)
        where = {"item_id": item_id, "output_index": self.thought_index}
        if announce:
            yield self._event("response.output_item.added", output_index=self.thought_index,
                              item=reasoning_item(item_id, "", None))
        elif text:
            yield self._event("response.reasoning_summary_text.done", **where, summary_index=0,
                              text=text)
            yield self._event("response.reasoning_summary_part.done", **where, summary_index=0,
                              part={"type": "summary_text", "text": text})
        yield self._event("response.output_item.done", output_index=self.thought_index,
                          item=item)
        self.done.append((self.thought_index, item))
        self.thought = None

    def _text(self, piece: str) -> Iterator[JSON]:
        item_id = f"msg_{self._rid}"
        if self.text is None:
            self.message_index = self._next_index()
            self.text = []
            yield self._event("response.output_item.added", output_index=self.message_index,
                              item={**message_item(item_id, "", status="in_progress"),
                                    "content": []})
            yield self._event("response.content_part.added", item_id=item_id,
                              output_index=self.message_index, content_index=0,
                              part={"type": "output_text", "text": "", "annotations": []})
        self.text.append(piece)
        yield self._event("response.output_text.delta", item_id=item_id,
                          output_index=self.message_index, content_index=0, delta=piece,
                          logprobs=[])

    def _call(self, delta: Mapping[str, Any]) -> Iterator[JSON]:
        key = int(delta.get("index") or 0)
        function = delta.get("function") or {}
        call = self.calls.get(key)
        if call is None:
            call = _Call(self._next_index(), f"fc_{self._rid}_{key}",
                         str(delta.get("id") or f"call_{self._rid}_{key}"),
                         str(function.get("name") or ""))
            self.calls[key] = call
            yield self._event("response.output_item.added", output_index=call.index,
                              item=call_item(call.item_id, call.call_id, call.name, "",
                                             status="in_progress"))
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            call.arguments.append(arguments)
            yield self._event("response.function_call_arguments.delta", item_id=call.item_id,
                              output_index=call.index, delta=arguments)

    def _close(self) -> Iterator[JSON]:
        """Close the open items: .done events in output order."""
        yield from self._end_thinking(None)
        if self.text is not None:
            item_id, text = f"msg_{self._rid}", "".join(self.text)
            item = message_item(item_id, text)
            where = {"item_id": item_id, "output_index": self.message_index, "content_index": 0}
            yield self._event("response.output_text.done", **where, text=text, logprobs=[])
            yield self._event("response.content_part.done", **where, part=item["content"][0])
            yield self._event("response.output_item.done", output_index=self.message_index,
                              item=item)
            self.done.append((self.message_index, item))
            self.text = None
        for call in self.calls.values():
            arguments = "".join(call.arguments)
            item = call_item(call.item_id, call.call_id, call.name, arguments)
            yield self._event("response.function_call_arguments.done", item_id=call.item_id,
                              output_index=call.index, name=call.name, arguments=arguments)
            yield self._event("response.output_item.done", output_index=call.index, item=item)
            self.done.append((call.index, item))
        self.calls = {}

    def end(self) -> Iterator[JSON]:
        """The closing events and response.completed (or .incomplete) with usage."""
        yield from self._close()
        status, incomplete = status_of(self.finish)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        yield self._event(kind, response=self._snapshot(status, usage=self.usage,
                                                        incomplete=incomplete))

    def fail(self, exc: LLMRouteError) -> list[JSON]:
        """response.failed (what was produced so far, and the error), then an error event."""
        error = {"code": exc.code or exc.type, "message": exc.message}
        return [self._event("response.failed",
                            response=self._snapshot("failed", usage=self.usage, error=error)),
                self._event("error", code=exc.code or exc.type, message=exc.message,
                            param=exc.param)]


async def events(state: ResponsesStream, chunks: AsyncIterator[Mapping[str, Any]]
                 ) -> AsyncIterator[JSON]:
    """The Responses events of a chat stream; a failure mid-way ends with response.failed."""
    for event in state.start():
        yield event
    try:
        async for chunk in chunks:
            for event in state.feed(chunk):
                yield event
    except LLMRouteError as exc:
        for event in state.fail(exc):
            yield event
        return
    except Exception:
        log.exception("responses stream %s failed mid-way", state.request_id)
        for event in state.fail(LLMRouteError("The upstream stream failed.")):
            yield event
        return
    for event in state.end():
        yield event
