"""The OpenAI chat-completions request as it arrives on the wire: parsed, validated, and turned into a
typed `ChatRequest`. Unknown parameters pass through to the upstream untouched."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from .cache.directive import DEFAULT as CACHE_DEFAULT
from .cache.directive import TTL_HEADER, CacheDirective, cache_directive
from .chat_quick import certain
from .chat_schema import TAG_ERROR, ChatBody
from .errors import InvalidRequestError
from .frozen import quick_init
from .reasoning import reasoning_of

#: Keys that are ours (OpenRouter-style routing controls) and never go upstream.
GATEWAY_KEYS = frozenset({"plugins", "models"})
#: The header a caller sends (`x-llmroute-explore: false`) to keep its request from exploring
#: (learning online); it becomes the request metadata `EXPLORE_KEY`.
EXPLORE_HEADER = "x-llmroute-explore"
EXPLORE_KEY = "llmroute_explore"
#: The header naming the caller's conversation (cache-aware routing); it becomes the request
#: metadata `SESSION_KEY`.
SESSION_HEADER = "x-llmroute-session"
SESSION_KEY = "llmroute_session"
MAX_SESSION_CHARS = 256
KNOWN_PLUGINS = ("auto-router",)
#: The request headers `with_headers` reads (lower-case).
_CONTROL_HEADERS = frozenset({"cache-control", TTL_HEADER, EXPLORE_HEADER, SESSION_HEADER})


#: The request schema, validated in one pass (pydantic-core) into plain dicts.
_BODY: TypeAdapter[ChatBody] = TypeAdapter(ChatBody)


@quick_init
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
    #: What the caller asks of the response cache (`Cache-Control`, `x-llmroute-cache-ttl`).
    cache: CacheDirective = CACHE_DEFAULT


#: Names pydantic puts in an error's location for the member of a union that failed (and for
#: a mapping's key), and our own tags (`chat_schema.by_tag`: `role=user`, `type?`).
_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "dict", "list", "none", "[key]"})
_TAG_PREFIXES = ("list[", "dict[", "literal[", "tagged-union[", "union[", "nullable[",
                 "constrained-", "function-")
_OUR_TAG = re.compile(r"(?:role|type)(?:=.*|\?)\Z", re.S)


def _is_tag(part: str) -> bool:
    """Whether a part of an error's location names a union member rather than a field (a key of
    `metadata` or `logit_bias` is a field)."""
    return part in _TYPE_TAGS or part.startswith(_TAG_PREFIXES) or bool(_OUR_TAG.match(part))


def param_of(loc: tuple[int | str, ...]) -> str:
    """An error location as OpenAI names the field: `messages[2].content[0].image_url.url`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _is_tag(part):
            out += f".{part}" if out else part
    return out


def with_headers(req: ChatRequest, headers: Mapping[str, str], *, lowered: bool = False
                 ) -> ChatRequest:
    """`req` with the routing and caching controls a caller sends as headers (`EXPLORE_HEADER`:
    a value other than true/false is a 400 naming the header; `SESSION_HEADER`: 1 to 256
    characters; the response cache's `cache.directive`). `lowered`: every name in `headers` is
    lower-case already (an ASGI request's, `server.asgi.request_headers`): the names are looked
    up, not each lowered (issue 17)."""
    found = _controls(headers, lowered)
    if not found:
        return req
    directive = cache_directive(found)
    if directive is not CACHE_DEFAULT:
        req = replace(req, cache=directive)
    if EXPLORE_HEADER not in found and SESSION_HEADER not in found:
        return req
    metadata = dict(req.metadata)
    if (value := found.get(EXPLORE_HEADER)) is not None:
        flag = value.strip().lower()
        if flag not in {"true", "false"}:
            raise InvalidRequestError(f"Header {EXPLORE_HEADER} must be true or false, got "
                                      f"{value!r}.", param=EXPLORE_HEADER)
        metadata[EXPLORE_KEY] = flag
    if (session := found.get(SESSION_HEADER)) is not None:
        session = session.strip()
        if not 0 < len(session) <= MAX_SESSION_CHARS:
            raise InvalidRequestError(f"Header {SESSION_HEADER} must have 1 to "
                                      f"{MAX_SESSION_CHARS} characters.", param=SESSION_HEADER)
        metadata[SESSION_KEY] = session
    return replace(req, metadata=metadata)


def _controls(headers: Mapping[str, str], lowered: bool) -> dict[str, str]:
    """The control headers among `headers`, by lower-case name."""
    if lowered:
        if _CONTROL_HEADERS.isdisjoint(headers):  # one C-level pass: the common case
            return {}
        return {name: headers[name] for name in _CONTROL_HEADERS if name in headers}
    found: dict[str, str] = {}
    for name, text in headers.items():  # one pass, any case (a plain dict from the Client)
        key = name.lower()
        if key in _CONTROL_HEADERS:
            found[key] = text
    return found


def may_explore(metadata: Mapping[str, str]) -> bool:
    """False when the request is marked not to explore (learning online)."""
    return metadata.get(EXPLORE_KEY, "true") != "false"


def _validation_error(exc: ValidationError) -> InvalidRequestError:
    errors = exc.errors(include_url=False)
    first, siblings = _deepest(errors)
    param, message = param_of(first["loc"]), first["msg"]
    if first["type"].startswith(TAG_ERROR):  # a union member chosen by a tag
        if isinstance(first.get("input"), dict):
            param += "." + first["type"].removeprefix(TAG_ERROR)
        else:
            message = "Input should be an object"
    others = len(errors) - siblings
    more = f" (and {others} more problem(s))" if others else ""
    return InvalidRequestError(f"Invalid value for '{param}': {message}{more}", param=param)


def _deepest(errors: list[ErrorDetails]) -> tuple[ErrorDetails, int]:
    """The error to report, and how many errors it stands for: where a union (`str | list[...]`)
    failed every member, the one that got furthest into the value (a bad part of a list beats
    "not a string") stands for all of them."""
    first = errors[0]
    loc = first["loc"]
    if not (loc and isinstance(loc[-1], str) and _is_tag(loc[-1])):
        return first, 1
    same_place = [e for e in errors if e["loc"][:len(loc) - 1] == loc[:-1]]
    best = max(same_place, key=lambda e: (len(e["loc"]), not e["type"].endswith("_type")))
    return best, len(same_place)


def parse_json(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 400 saying what is wrong with it."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    return data


def chat_request(data: Mapping[str, Any], *, max_messages: int | None = None) -> ChatRequest:
    """Validate a chat-completions body (the schema, then what spans fields) and extract the
    routing controls. `max_messages`: the server's limit on messages per request. A body of the
    common kind that `chat_quick.certain` vouches for skips the full validation (same request);
    every other body, and every error, is `checked_request`'s."""
    if not certain(data, max_messages):
        return checked_request(data, max_messages=max_messages)
    # certain: a dict without the gateway's keys (plugins, models): forwarded whole, a model
    # named, no fallbacks. Built as `ChatRequest(...)` builds it (no __post_init__), every field
    # in declaration order, without the call's keyword matching (issue 17).
    options = data.get("stream_options") or {}
    req = object.__new__(ChatRequest)
    object.__setattr__(req, "__dict__", {
        "model": data["model"], "body": dict(data), "stream": bool(data.get("stream")),
        "include_usage": options.get("include_usage", False), "fallbacks": (),
        "allowed_models": (), "excluded_models": (),
        "max_output_tokens": data.get("max_completion_tokens") or data.get("max_tokens"),
        "metadata": {}, "user": data.get("user"), "cache": CACHE_DEFAULT})
    return req


def checked_request(data: Mapping[str, Any], *, max_messages: int | None = None) -> ChatRequest:
    """`chat_request` through the full validation: pydantic's schema, then the checks across
    fields; every 400 names its param."""
    try:
        body = _BODY.validate_python(data)
    except ValidationError as exc:
        raise _validation_error(exc) from None
    if max_messages is not None and len(body["messages"]) > max_messages:
        raise InvalidRequestError(f"Too many messages: {len(body['messages'])}, the limit is "
                                  f"{max_messages}.", param="messages")
    check_messages(body["messages"])
    check_options(body)
    reasoning_of(body)
    allowed: list[str] = []
    excluded: list[str] = []
    for i, plugin in enumerate(body.get("plugins") or ()):
        if plugin["id"] not in KNOWN_PLUGINS:
            raise InvalidRequestError(f"Unknown plugin {plugin['id']!r}. Supported plugins: "
                                      f"{', '.join(KNOWN_PLUGINS)}.", param=f"plugins[{i}].id")
        allowed += plugin.get("allowed_models", ())
        excluded += plugin.get("excluded_models", ())
    fallbacks = list(body.get("models") or ())
    model = body.get("model") or (fallbacks.pop(0) if fallbacks else None)
    if not model:
        raise InvalidRequestError("You must provide a model parameter ('auto' routes for you).",
                                  param="model")
    forward = {k: v for k, v in data.items() if k not in GATEWAY_KEYS}
    options = body.get("stream_options") or {}
    return ChatRequest(
        model=model, body=forward, stream=bool(body.get("stream")),
        include_usage=options.get("include_usage", False),
        fallbacks=tuple(m for m in fallbacks if m != model),
        allowed_models=tuple(allowed), excluded_models=tuple(excluded),
        max_output_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
        user=body.get("user"),
    )


def check_messages(messages: Sequence[Mapping[str, Any]]) -> None:
    """What the schema cannot say per message: an assistant message has content or calls, and a
    tool message answers a call of an earlier assistant message."""
    calls: set[str] = set()
    for i, message in enumerate(messages):
        role = message["role"]
        if role == "assistant":
            tool_calls = message.get("tool_calls") or ()
            if message.get("content") is None and not tool_calls and not (
                    message.get("function_call") or message.get("refusal") or message.get("audio")):
                raise InvalidRequestError(
                    f"Missing 'messages[{i}].content': an assistant message needs content unless "
                    "it has tool_calls.", param=f"messages[{i}].content")
            calls.update(call["id"] for call in tool_calls)
        elif role == "tool" and message["tool_call_id"] not in calls:
            raise InvalidRequestError(
                f"Invalid 'messages[{i}].tool_call_id': a tool message must answer a tool call "
                "of a preceding assistant message.", param=f"messages[{i}].tool_call_id")


def check_options(body: Mapping[str, Any]) -> None:
    """Options that depend on one another: a named tool_choice names a tool; top_logprobs needs
    logprobs; stream_options needs stream."""
    choice = body.get("tool_choice")
    tools = body.get("tools") or ()
    if choice == "required" and not tools:
        raise InvalidRequestError("Invalid value for 'tool_choice': 'required' needs 'tools'.",
                                  param="tool_choice")
    if isinstance(choice, dict) and choice["type"] in ("function", "custom"):
        kind = choice["type"]
        names = {tool[kind]["name"] for tool in tools if tool["type"] == kind}
        if choice[kind]["name"] not in names:
            raise InvalidRequestError(
                f"Invalid value for 'tool_choice.{kind}.name': no {kind} tool named "
                f"{choice[kind]['name']!r} in 'tools'.", param=f"tool_choice.{kind}.name")
    if body.get("top_logprobs") is not None and body.get("logprobs") is not True:
        raise InvalidRequestError("Invalid value for 'top_logprobs': it needs 'logprobs': true.",
                                  param="top_logprobs")
    if body.get("stream_options") is not None and body.get("stream") is not True:
        raise InvalidRequestError("Invalid value for 'stream_options': it is only allowed when "
                                  "'stream' is true.", param="stream_options")
