"""The Anthropic Messages API's part of `/openapi.json`: `POST /v1/messages` and
`/v1/messages/count_tokens`, their bodies and Anthropic-shaped errors. The request schema says
what `messages_request` checks (fields, types, ranges); the per-block rules are its own."""

from __future__ import annotations

from typing import Any

JSONDict = dict[str, Any]
REF = "#/components/schemas/{}"

_TEXT = {"type": "object", "required": ["type", "text"],
         "properties": {"type": {"const": "text"}, "text": {"type": "string"},
                        "cache_control": {"type": "object"}}}
_BLOCK = {"type": "object", "required": ["type"], "properties": {"type": {"type": "string"}},
          "description": "text, image, document, tool_use, tool_result, thinking, redacted_thinking"}
_MESSAGE = {"type": "object", "required": ["role", "content"], "properties": {
    "role": {"enum": ["user", "assistant"]},
    "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": _BLOCK}]}}}
_TOOL = {"type": "object", "required": ["name", "input_schema"], "properties": {
    "name": {"type": "string"}, "description": {"type": "string"},
    "input_schema": {"type": "object"}, "cache_control": {"type": "object"}}}
_UNIT = {"type": "number", "minimum": 0, "maximum": 1}
_COMMON: JSONDict = {
    "model": {"type": "string", "minLength": 1, "description": "a model, `auto` or `auto/<policy>`"},
    "messages": {"type": "array", "minItems": 1, "items": _MESSAGE},
    "system": {"anyOf": [{"type": "string"}, {"type": "array", "items": _TEXT}]},
    "tools": {"type": "array", "items": _TOOL},
    "tool_choice": {"type": "object", "required": ["type"], "properties": {
        "type": {"enum": ["auto", "any", "tool", "none"]}, "name": {"type": "string"},
        "disable_parallel_tool_use": {"type": "boolean"}}},
}
REQUEST: JSONDict = {
    "type": "object", "required": ["model", "max_tokens", "messages"], "properties": {
        **_COMMON, "max_tokens": {"type": "integer", "minimum": 1}, "stream": {"type": "boolean"},
        "temperature": _UNIT, "top_p": _UNIT, "top_k": {"type": "integer", "minimum": 0},
        "stop_sequences": {"type": "array", "items": {"type": "string"}},
        "metadata": {"type": "object", "properties": {"user_id": {"type": "string"}}},
        "thinking": {"type": "object", "required": ["type"], "properties": {
            "type": {"enum": ["enabled", "disabled", "adaptive"]},
            "budget_tokens": {"type": "integer", "minimum": 1024}}}}}
COUNT_REQUEST: JSONDict = {"type": "object", "required": ["model", "messages"],
                           "properties": _COMMON}
MESSAGE: JSONDict = {
    "type": "object", "required": ["id", "type", "role", "model", "content", "stop_reason",
                                   "usage"], "properties": {
        "id": {"type": "string"}, "type": {"const": "message"}, "role": {"const": "assistant"},
        "model": {"type": "string"}, "content": {"type": "array", "items": _BLOCK},
        "stop_reason": {"type": ["string", "null"]}, "stop_sequence": {"type": ["string", "null"]},
        "usage": {"type": "object", "required": ["input_tokens", "output_tokens"], "properties": {
            "input_tokens": {"type": "integer"}, "output_tokens": {"type": "integer"},
            "cache_read_input_tokens": {"type": "integer"},
            "cache_creation_input_tokens": {"type": "integer"}}}}}
ERROR: JSONDict = {
    "type": "object", "required": ["type", "error"], "properties": {
        "type": {"const": "error"}, "error": {
            "type": "object", "required": ["type", "message"], "properties": {
                "type": {"type": "string"}, "message": {"type": "string"}}}}}
SCHEMAS: JSONDict = {"MessagesRequest": REQUEST, "MessagesCountRequest": COUNT_REQUEST,
                     "Message": MESSAGE, "MessagesError": ERROR,
                     "MessagesTokenCount": {"type": "object", "required": ["input_tokens"],
                                            "properties": {"input_tokens": {"type": "integer"}}}}


def _json(name: str) -> JSONDict:
    return {"application/json": {"schema": {"$ref": REF.format(name)}}}


def _errors(*statuses: int) -> JSONDict:
    return {str(s): {"description": "an Anthropic-shaped error", "content": _json("MessagesError")}
            for s in statuses}


def messages_paths(sse_event: JSONDict) -> JSONDict:
    """The two operations (`sse_event`: the document's schema of one server-sent event)."""
    example = {"model": "auto", "max_tokens": 256,
               "messages": [{"role": "user", "content": "Hello!"}]}
    create = {
        "operationId": "messages", "summary": "Anthropic Messages API; `model: auto` routes",
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": REF.format("MessagesRequest")}, "example": example}}},
        "responses": {
            "200": {"description": "the message, or its events with `stream: true`",
                    "content": {**_json("Message"), "text/event-stream": {"schema": sse_event}}},
            **_errors(400, 401, 403, 404, 408, 413, 429, 499, 502, 503, 504)}}
    count = {
        "operationId": "messagesCountTokens", "summary": "The prompt's tokens, as counted here",
        "requestBody": {"required": True, "content": _json("MessagesCountRequest")},
        "responses": {"200": {"description": "the count", "content": _json("MessagesTokenCount")},
                      **_errors(400, 401, 403, 404, 413)}}
    return {"/v1/messages": {"post": create}, "/v1/messages/count_tokens": {"post": count}}
