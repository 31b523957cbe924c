"""The response cache's key: the normalized request, hashed, within the caller's scope.

The key covers the model as asked (`auto`, `auto/<policy>` or a concrete model), the request's
own fallbacks and its `auto-router` plugin's allowed/excluded models, and every body parameter
except `IGNORED`: the ones that never change the answer (streaming and its options, who the end
user is, request metadata and the provider-side storage and prompt-cache hints). The body is
canonical JSON (sorted keys) hashed with SHA-256, together with the scope, so one tenant's key can
never name another tenant's entry. A stream and a non-stream request with the same content share
one key (the answer is stored whole and replayed as chunks when a stream asks for it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Literal

import orjson

from ..chat import ChatRequest
from ..outcome import Principal

#: Body parameters that do not change the answer, left out of the key.
IGNORED = frozenset({"stream", "stream_options", "user", "metadata", "store", "prompt_cache_key",
                     "safety_identifier"})
#: Left out of the semantic group's key as well (the prompt is compared by embedding).
PROMPT = frozenset({"messages"})

Scope = Literal["key", "team", "global"]


def scope_of(principal: Principal, scope: Scope) -> str:
    """Who shares entries: the gateway key (an open gateway's callers are one), its team (a key
    without a team keeps its own), or everyone."""
    if scope == "global":
        return "global"
    if scope == "team" and principal.team:
        return f"team:{principal.team}"
    return f"key:{principal.name or ''}"


def _canonical(req: ChatRequest, scope: str, leave_out: frozenset[str]) -> bytes:
    body = {k: v for k, v in req.body.items() if k not in leave_out and k != "model"}
    shape: dict[str, Any] = {"scope": scope, "model": req.model, "body": body}
    if req.fallbacks or req.allowed_models or req.excluded_models:
        shape["route"] = [req.fallbacks, req.allowed_models, req.excluded_models]
    return orjson.dumps(shape, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def request_key(req: ChatRequest, scope: str) -> str:
    """The exact-match key: SHA-256 (hex) of the canonical request in its scope."""
    return hashlib.sha256(_canonical(req, scope, IGNORED)).hexdigest()


def group_key(req: ChatRequest, scope: str) -> str:
    """The semantic cache's group: the same scope, model or policy and parameters, any prompt."""
    return hashlib.sha256(_canonical(req, scope, IGNORED | PROMPT)).hexdigest()


def sampled(body: Mapping[str, Any]) -> bool:
    """Whether the answer is sampled: temperature > 0, or absent (OpenAI's default is 1)."""
    temperature = body.get("temperature")
    return temperature is None or float(temperature) > 0
