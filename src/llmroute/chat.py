"""The OpenAI chat-completions request as it arrives on the wire: parsed, validated, and turned into a
typed `ChatRequest`. Unknown parameters pass through to the upstream untouched."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import InvalidRequestError

#: Keys that are ours (OpenRouter-style routing controls) and never go upstream.
GATEWAY_KEYS = frozenset({"plugins", "models"})
#: The header a caller sends (`x-llmroute-explore: false`) to keep its request from exploring
#: (learning online); it becomes the request metadata `EXPLORE_KEY`.
EXPLORE_HEADER = "x-llmroute-explore"
EXPLORE_KEY = "llmroute_explore"
KNOWN_PLUGINS = ("auto-router",)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Message(_Open):
    """One chat message; content is a string, a list of parts, or null (assistant tool calls)."""

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class StreamOptions(_Open):
    """`stream_options`."""

    include_usage: bool = Field(False, strict=True)


class Plugin(_Open):
    """An OpenRouter-style plugin entry."""

    id: str
    allowed_models: list[str] = Field(default_factory=list)
    excluded_models: list[str] = Field(default_factory=list)


class ChatBody(_Open):
    """The fields the gateway reads; everything else passes through. The body is forwarded as sent,
    so scalars are strict: a value pydantic would coerce ("0.5", "yes") is refused, not forwarded."""

    model: str | None = None
    messages: list[Message] = Field(min_length=1)
    stream: bool = Field(False, strict=True)
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1, strict=True)
    max_completion_tokens: int | None = Field(None, ge=1, strict=True)
    n: int | None = Field(None, ge=1, le=128, strict=True)
    temperature: float | None = Field(None, ge=0, le=2, strict=True)
    tools: list[dict[str, Any]] | None = None
    response_format: dict[str, Any] | None = None
    user: str | None = None
    plugins: list[Plugin] | None = None
    models: list[str] | None = None


@dataclass(frozen=True)
class ChatRequest:
    """A validated chat request: what the gateway routes, and the body it forwards."""

    model: str
    body: Mapping[str, Any]
    stream: bool = False
    include_usage: bool = False
    fallbacks: tuple[str, ...] = ()
    allowed_models: tuple[str, ...] = ()
    excluded_models: tuple[str, ...] = ()
    max_output_tokens: int | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    #: The end user: the body's `user`, else the gateway's user header (set by the server).
    user: str | None = None


#: Names pydantic puts in an error's location for the member of a union that failed.
_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "dict", "list", "none"})


def _param(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def with_headers(req: ChatRequest, headers: Mapping[str, str]) -> ChatRequest:
    """`req` with the routing controls a caller sends as headers (`EXPLORE_HEADER`; a value other
    than true/false is a 400 naming the header)."""
    value = next((v for k, v in headers.items() if k.lower() == EXPLORE_HEADER), None)
    if value is None:
        return req
    flag = value.strip().lower()
    if flag not in {"true", "false"}:
        raise InvalidRequestError(f"Header {EXPLORE_HEADER} must be true or false, got {value!r}.",
                                  param=EXPLORE_HEADER)
    return replace(req, metadata={**req.metadata, EXPLORE_KEY: flag})


def may_explore(metadata: Mapping[str, str]) -> bool:
    """False when the request is marked not to explore (learning online)."""
    return metadata.get(EXPLORE_KEY, "true") != "false"


def _validation_error(exc: ValidationError) -> InvalidRequestError:
    first = exc.errors()[0]
    loc = tuple(p for p in first["loc"]
                if not (isinstance(p, str) and (p in _TYPE_TAGS or "[" in p)))
    param = _param(loc)
    more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
    return InvalidRequestError(f"Invalid value for '{param}': {first['msg']}{more}", param=param)


def parse_json(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 400 saying what is wrong with it."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    return data


def chat_request(data: Mapping[str, Any]) -> ChatRequest:
    """Validate a chat-completions body and extract the routing controls."""
    try:
        body = ChatBody.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(exc) from None
    allowed: list[str] = []
    excluded: list[str] = []
    for i, plugin in enumerate(body.plugins or []):
        if plugin.id not in KNOWN_PLUGINS:
            raise InvalidRequestError(f"Unknown plugin {plugin.id!r}. Supported plugins: "
                                      f"{', '.join(KNOWN_PLUGINS)}.", param=f"plugins[{i}].id")
        allowed += plugin.allowed_models
        excluded += plugin.excluded_models
    fallbacks = list(body.models or [])
    model = body.model or (fallbacks.pop(0) if fallbacks else None)
    if not model:
        raise InvalidRequestError("You must provide a model parameter ('auto' routes for you).",
                                  param="model")
    forward = {k: v for k, v in data.items() if k not in GATEWAY_KEYS}
    return ChatRequest(
        model=model, body=forward, stream=body.stream,
        include_usage=bool(body.stream_options and body.stream_options.include_usage),
        fallbacks=tuple(m for m in fallbacks if m != model),
        allowed_models=tuple(allowed), excluded_models=tuple(excluded),
        max_output_tokens=body.max_completion_tokens or body.max_tokens,
        user=body.user,
    )
