"""The Azure OpenAI dialect of the fake upstream: OpenAI's chat wire at Azure's paths
(`/openai/deployments/{deployment}/chat/completions?api-version=…`, `/openai/v1/chat/completions`),
Azure's auth (`api-key: KEY` or an Entra `Authorization: Bearer TOKEN`), its content-filter
annotations (`prompt_filter_results`, a first stream chunk with no choices) and its error bodies
(`{"error": {"code": "401" | "429" | "content_filter" | "DeploymentNotFound", "message"}}`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from llmroute.testing._openai_wire import OpenAIWire
from llmroute.testing._wire import JsonObject, Reply, dumps, parse_object
from llmroute.testing.behaviours import Error, Protocol, bad_request

_SAFE: Final = {category: {"filtered": False, "severity": "safe"}
                for category in ("hate", "self_harm", "sexual", "violence")}
_PROMPT_FILTER: Final = [{"prompt_index": 0, "content_filter_results": _SAFE}]
ACCESS_DENIED: Final = ("Access denied due to invalid subscription key or wrong API endpoint. Make "
                        "sure to provide a valid key for an active subscription and use a correct "
                        "regional API endpoint for your resource.")
RATE_LIMITED: Final = ("Requests to the ChatCompletions_Create Operation under Azure OpenAI API "
                       "version 2024-10-21 have exceeded token rate limit of your current OpenAI "
                       "S0 pricing tier. Please retry after {s} seconds. Please go here: "
                       "https://aka.ms/oai/quotaincrease if you would like to further increase "
                       "the default rate limit.")
FILTERED: Final = ("The response was filtered due to the prompt triggering Azure OpenAI's content "
                   "management policy. Please modify your prompt and retry.")


def resource_not_found() -> Error:
    """What Azure answers a path without `api-version` (or an unknown route)."""
    return Error(404, "Resource not found", code="404")


class AzureWire(OpenAIWire):
    """Azure OpenAI chat completions."""

    name: Protocol = "azure"

    def authorized(self, headers: Mapping[str, str], api_key: str) -> bool:
        return (headers.get("api-key") == api_key
                or headers.get("authorization") == f"Bearer {api_key}")

    def validate(self, body: JsonObject | None) -> Error | None:
        # the deployment in the path names the model: `model` in the body is optional
        if body is None:
            return bad_request("Invalid JSON body")
        if not isinstance(body.get("messages"), list):
            return Error(400, "'messages' is a required property", code="BadRequest")
        return None

    def completion(self, reply: Reply) -> bytes:
        body = parse_object(super().completion(reply)) or {}
        body["prompt_filter_results"] = _PROMPT_FILTER
        for choice in body["choices"]:
            choice["content_filter_results"] = _SAFE
        return dumps(body)

    def stream_frames(self, reply: Reply, body: JsonObject) -> list[bytes]:
        first = {"id": "", "object": "", "created": 0, "model": "", "choices": [],
                 "prompt_filter_results": _PROMPT_FILTER}
        return [b"data: " + dumps(first) + b"\n\n", *super().stream_frames(reply, body)]

    def _error_object(self, err: Error) -> JsonObject:
        if err.status == 401:
            return {"code": "401", "message": ACCESS_DENIED}
        if err.status == 429 and err.code != "insufficient_quota":
            wait = (err.headers or {}).get("retry-after", "1")
            return {"code": "429", "message": RATE_LIMITED.format(s=wait)}
        if err.code in ("content_policy_violation", "content_filter"):
            return {"message": FILTERED, "type": None, "param": "prompt",
                    "code": "content_filter", "status": 400,
                    "innererror": {"code": "ResponsibleAIPolicyViolation",
                                   "content_filter_result": {
                                       **_SAFE, "violence": {"filtered": True,
                                                             "severity": "high"}}}}
        if err.code == "model_not_found":
            return {"code": "DeploymentNotFound",
                    "message": "The API deployment for this resource does not exist. If you "
                               "created the deployment within the last 5 minutes, please wait "
                               "a moment and try again."}
        return super()._error_object(err)
