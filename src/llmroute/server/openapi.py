"""The gateway's own API as an OpenAPI 3.1 document (`GET /openapi.json`). Request bodies come from
the wire models the server validates with (`chat_schema.ChatBody`, so the document cannot drift
from what is enforced); the answers and the other small bodies are described here."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

import orjson
from pydantic import ConfigDict, Field, TypeAdapter, with_config
from typing_extensions import TypedDict

from ..chat_schema import ChatBody
from .feedback import MAX_COMMENT
from .messages_openapi import SCHEMAS as MESSAGES_SCHEMAS
from .messages_openapi import messages_paths
from .openapi_extra import extra_paths

JSONDict = dict[str, Any]
REF = "#/components/schemas/{model}"


@with_config(ConfigDict(extra="forbid", strict=True))
class FeedbackBody(TypedDict):
    """`POST /v1/feedback`: at least one of rating, success and comment."""

    request_id: str
    rating: NotRequired[int | None]
    success: NotRequired[bool | None]
    comment: NotRequired[Annotated[str, Field(max_length=MAX_COMMENT)] | None]


class ErrorDetail(TypedDict):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(TypedDict):
    """Every error: OpenAI's shape, with the status it came with."""

    error: ErrorDetail


class ChoiceMessage(TypedDict):
    role: Literal["assistant"]
    content: str | None
    tool_calls: NotRequired[list[JSONDict]]


class Choice(TypedDict):
    index: int
    message: ChoiceMessage
    finish_reason: str | None


class Usage(TypedDict):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: NotRequired[float]


class ChatCompletion(TypedDict):
    """A chat completion; `model` is the model that answered."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice]
    usage: NotRequired[Usage]


class ModelEntry(TypedDict):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(TypedDict):
    object: Literal["list"]
    data: list[ModelEntry]


class FeedbackRecorded(TypedDict):
    request_id: str
    status: Literal["recorded"]



#: One server-sent event of a stream (`data:` a chunk's JSON, an error's JSON, or `[DONE]`).
SSE_EVENT = {"type": "object", "required": ["data"],
             "properties": {"data": {"type": "string"}, "event": {"type": "string"},
                            "id": {"type": "string"}, "retry": {"type": "integer"}}}

def _schemas() -> tuple[dict[str, str], JSONDict]:
    """The `$ref` of each named schema, and every definition (components.schemas)."""
    named = {"ChatRequest": ChatBody, "FeedbackRequest": FeedbackBody, "Error": ErrorBody,
             "ChatCompletion": ChatCompletion, "ModelList": ModelList,
             "FeedbackRecorded": FeedbackRecorded}
    keyed, defs = TypeAdapter.json_schemas(
        [(name, "validation", TypeAdapter(kind)) for name, kind in named.items()],
        ref_template=REF)
    refs = {name: schema["$ref"] for (name, _), schema in keyed.items()}
    return refs, defs.get("$defs", {})


def _json(ref: str) -> JSONDict:
    return {"application/json": {"schema": {"$ref": ref}}}


def _errors(ref: str, *statuses: int) -> JSONDict:
    return {str(s): {"description": "an OpenAI-shaped error", "content": _json(ref)}
            for s in statuses}


def build_openapi(version: str) -> JSONDict:
    """The document for this gateway version."""
    refs, defs = _schemas()
    error = refs["Error"]
    auth_errors = _errors(error, 401, 403)
    chat = {
        "summary": "Chat completions (OpenAI-compatible); `model: auto` routes",
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": refs["ChatRequest"]},
            "example": {"model": "auto", "messages": [{"role": "user", "content": "Hello!"}]}}}},
        "responses": {
            "200": {"description": "the answer, or its server-sent events with `stream: true`",
                    "content": {**_json(refs["ChatCompletion"]),
                                "text/event-stream": {"schema": SSE_EVENT}}},
            **_errors(error, 400, 404, 408, 413, 429, 499, 502, 503, 504), **auth_errors},
    }
    ok_json = {"type": "object"}
    paths: JSONDict = {
        "/v1/chat/completions": {"post": {**chat, "operationId": "chat"}},
        "/chat/completions": {"post": {**chat, "operationId": "chatNoPrefix"}},
        "/v1/models": {"get": {"operationId": "models", "summary": "auto, policies, models",
                               "responses": {"200": {"description": "the models",
                                                     "content": _json(refs["ModelList"])},
                                             **auth_errors}}},
        "/v1/feedback": {"post": {
            "operationId": "feedback", "summary": "Rate a request",
            "requestBody": {"required": True, "content": _json(refs["FeedbackRequest"])},
            "responses": {"200": {"description": "recorded",
                                  "content": _json(refs["FeedbackRecorded"])},
                          **_errors(error, 400, 404, 503), **auth_errors}}},
        "/v1/budgets": {"get": {"operationId": "budgets", "summary": "The key's limits",
                                "responses": {"200": {"description": "use of each limit",
                                                      "content": {"application/json": {
                                                          "schema": ok_json}}},
                                              **_errors(error, 503), **auth_errors}}},
        "/health": {"get": {"operationId": "health", "security": [],
                            "responses": {"200": {"description": "alive"}}}},
        "/ready": {"get": {"operationId": "ready", "security": [],
                           "responses": {"200": {"description": "ready"},
                                         "503": {"description": "degraded"}}}},
        "/metrics": {"get": {"operationId": "metrics", "summary": "Prometheus metrics",
                             "responses": {"200": {"description": "the text exposition format",
                                                   "content": {"text/plain": {
                                                       "schema": {"type": "string"}}}},
                                           **auth_errors}}},
        "/openapi.json": {"get": {"operationId": "openapi", "summary": "This document",
                                  "responses": {"200": {"description": "OpenAPI 3.1"},
                                                **auth_errors}}},
        **messages_paths(SSE_EVENT),  # the Anthropic Messages API
    }
    paths.update(extra_paths({**_errors(error, 400, 404, 413, 429, 502, 503, 504), **auth_errors}))
    return {
        "openapi": "3.1.0",
        "info": {"title": "llmroute gateway", "version": version,
                 "description": "An OpenAI-compatible LLM gateway that routes each request."},
        "paths": paths,
        "components": {"schemas": {**defs, **MESSAGES_SCHEMAS}, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            # the same gateway key as Anthropic-style clients send it (every route takes both)
            "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}}},
        "security": [{"bearer": []}, {"apiKey": []}],
    }


def openapi_bytes(version: str) -> bytes:
    """The document, rendered once per app."""
    return orjson.dumps(build_openapi(version))

