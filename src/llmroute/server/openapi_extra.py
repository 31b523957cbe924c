"""The OpenAPI paths of the Responses API and embeddings (`openapi.build_openapi` adds them):
their bodies are OpenAI's, described loosely (an object) with an example; what is enforced is
in `responses_request` and `embeddings`."""

from __future__ import annotations

from typing import Any

JSONDict = dict[str, Any]
_OBJECT = {"type": "object"}


def _post(operation: str, summary: str, example: JSONDict, errors: JSONDict,
          stream: bool) -> JSONDict:
    content: JSONDict = {"application/json": {"schema": _OBJECT}}
    if stream:
        content["text/event-stream"] = {"schema": {"type": "string"}}
    return {"post": {
        "operationId": operation, "summary": summary,
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": _OBJECT, "example": example}}},
        "responses": {"200": {"description": "OpenAI's response object" + (
            ", or its server-sent events with `stream: true`" if stream else ""),
            "content": content}, **errors}}}


def extra_paths(errors: JSONDict) -> JSONDict:
    """`errors`: the error responses (status -> description and schema) of these routes."""
    responses = _post("responses", "OpenAI Responses API; `model: auto` routes",
                      {"model": "auto", "input": "Hello!"}, errors, stream=True)
    embeddings = _post("embeddings", "Embeddings of a concrete embedding model (not routed)",
                       {"model": "text-embedding-3-small", "input": ["Hello!"]}, errors,
                       stream=False)
    return {"/v1/responses": responses,
            "/responses": {"post": {**responses["post"], "operationId": "responsesNoPrefix"}},
            "/v1/embeddings": embeddings,
            "/embeddings": {"post": {**embeddings["post"], "operationId": "embeddingsNoPrefix"}}}
