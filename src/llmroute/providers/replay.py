"""The replay adapter (type `replay`): answers chat requests with answers models really gave.

It serves recorded outcome records (by default the bundled routerbench test split): a request's last
user message is looked up verbatim, and the requested upstream model's recorded answer comes back in
OpenAI `chat.completion` shape, usage estimated from lengths (≈4 characters a token) and the call's
recorded cost in `usage.cost`. Nothing is ever invented: an unrecorded prompt is a `bad_request`, a
model with no recorded answer for the prompt is `not_found` (the gateway falls back).

`base_url` names the data: `replay:` or `replay:routerbench-test` for the bundled file, else the path
of a `.jsonl` or `.jsonl.gz` file of outcome records (with `responses`) or vendored replay records.
"""

from __future__ import annotations

import gzip
import hashlib
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from ..errors import UpstreamError
from ..settings import ProviderConfig
from .base import JSON

BUNDLED = "data/replay/routerbench-test.jsonl.gz"
CHARS_PER_TOKEN = 4
CHUNK_CHARS = 24


def approx_tokens(chars: int) -> int:
    """Tokens of a text of `chars` characters, at ≈4 characters a token (at least 1)."""
    return max(1, -(-chars // CHARS_PER_TOKEN))


def slim_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A replay record (id, dataset, prompt, per-model response/outcome/cost_usd/output_chars) from an
    outcome record with `responses`; vendored replay records (with `models`) pass through."""
    if "models" in record:
        return dict(record)
    responses: Mapping[str, str] = record.get("responses") or {}
    outcomes, costs = record.get("outcomes") or {}, record.get("cost_usd") or {}
    chars = record.get("output_chars") or {}
    models = {model: {"response": text, "outcome": outcomes.get(model),
                      "cost_usd": costs.get(model), "output_chars": chars.get(model, len(text))}
              for model, text in sorted(responses.items())}
    return {"id": record.get("id"), "dataset": record.get("dataset"),
            "prompt": _record_prompt(record), "models": models}


def _record_prompt(record: Mapping[str, Any]) -> str:
    if isinstance(record.get("prompt"), str):
        return str(record["prompt"])
    return last_user_text({"messages": record.get("messages") or []})


def load_records(source: str | None = None) -> list[dict[str, Any]]:
    """Replay records from `source` (a `replay:` name or a file path); the bundled file by default."""
    if source is None or source.startswith("replay:"):
        raw = resources.files("llmroute").joinpath(BUNDLED).read_bytes()
        name = BUNDLED
    else:
        raw = Path(source).read_bytes()
        name = source
    if name.endswith(".gz"):
        raw = gzip.decompress(raw)
    return [slim_record(orjson.loads(line)) for line in raw.splitlines() if line.strip()]


def last_user_text(body: Mapping[str, Any]) -> str:
    """The text of the last user message (string content, or its text parts joined)."""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return "".join(str(p.get("text", "")) for p in content
                               if isinstance(p, Mapping) and p.get("type") == "text")
            return content if isinstance(content, str) else ""
    return ""


@dataclass(frozen=True)
class Recorded:
    """One recorded answer: the record it came from, the model's answer, its outcome and cost."""

    record_id: str
    prompt: str
    answer: str
    outcome: float | None
    cost_usd: float | None


class ReplayBook:
    """Prompt -> record, built once; looks up a model's recorded answer to a prompt."""

    def __init__(self, records: list[dict[str, Any]]):
        self.records = records
        self._by_prompt = {r["prompt"]: r for r in records}

    def find(self, prompt: str, model: str) -> Recorded | None:
        """The recorded answer of `model` to `prompt`, or None."""
        record = self._by_prompt.get(prompt)
        entry = record["models"].get(model) if record else None
        if record is None or entry is None:
            return None
        return Recorded(str(record["id"]), prompt, str(entry["response"]), entry.get("outcome"),
                        entry.get("cost_usd"))

    def knows(self, prompt: str) -> bool:
        """True when the prompt was recorded (for some model)."""
        return prompt in self._by_prompt


class ReplayProvider:
    """A deployment that replays recorded answers; no network, no key."""

    def __init__(self, name: str, config: ProviderConfig, api_key: str | None = None,
                 book: ReplayBook | None = None):
        self.name = name
        self.config = config
        self.book = book or ReplayBook(load_records(config.base_url))

    def _lookup(self, body: Mapping[str, Any], model: str) -> Recorded:
        prompt = last_user_text(body)
        found = self.book.find(prompt, model)
        if found is not None:
            return found
        if not self.book.knows(prompt):
            raise UpstreamError("bad_request", f"{self.name}: this prompt was not recorded (the "
                                "replay only answers the recorded prompts, verbatim)",
                                provider=self.name, model=model, code="not_recorded")
        raise UpstreamError("not_found", f"{self.name}: no answer of {model!r} was recorded for "
                            "this prompt", provider=self.name, model=model, code="not_recorded")

    async def complete(self, body: Mapping[str, Any], upstream_model: str) -> JSON:
        """The recorded answer as a `chat.completion`."""
        found = self._lookup(body, upstream_model)
        message = {"role": "assistant", "content": found.answer}
        return {"id": _completion_id(found, upstream_model), "object": "chat.completion",
                "created": int(time.time()), "model": upstream_model,
                "choices": [{"index": 0, "message": message, "finish_reason": "stop",
                             "logprobs": None}],
                "usage": _usage(found)}

    async def stream(self, body: Mapping[str, Any], upstream_model: str) -> AsyncIterator[JSON]:
        """The recorded answer in chunks, then a usage chunk when `stream_options.include_usage`."""
        found = self._lookup(body, upstream_model)
        base = {"id": _completion_id(found, upstream_model), "object": "chat.completion.chunk",
                "created": int(time.time()), "model": upstream_model}
        options = body.get("stream_options")
        include_usage = isinstance(options, Mapping) and bool(options.get("include_usage"))
        for delta, finish in _deltas(found.answer):
            yield {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                                        "logprobs": None}]}
        if include_usage:
            yield {**base, "choices": [], "usage": _usage(found)}

    async def aclose(self) -> None:
        """Nothing to close."""


def _deltas(answer: str) -> Iterator[tuple[dict[str, str], str | None]]:
    yield {"role": "assistant", "content": ""}, None
    for start in range(0, len(answer), CHUNK_CHARS):
        yield {"content": answer[start:start + CHUNK_CHARS]}, None
    yield {}, "stop"


def _usage(found: Recorded) -> JSON:
    prompt, completion = approx_tokens(len(found.prompt)), approx_tokens(len(found.answer))
    usage: JSON = {"prompt_tokens": prompt, "completion_tokens": completion,
                   "total_tokens": prompt + completion}
    if found.cost_usd is not None:
        usage["cost"] = found.cost_usd  # the call's real recorded cost, USD (OpenRouter's field)
    return usage


def _completion_id(found: Recorded, model: str) -> str:
    digest = hashlib.sha256(f"{found.record_id}\0{model}".encode()).hexdigest()[:24]
    return f"chatcmpl-replay-{digest}"
