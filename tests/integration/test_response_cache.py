"""The response cache through a real served gateway, the openai SDK as client and FakeUpstream
behind: hits, misses and bypasses (both headers), TTL expiry, tenant isolation, the stampede of
identical concurrent misses, cached streams read by the SDK (text and tool calls), stream ->
non-stream reuse, and the ledger's marks and costs."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

from llmroute.server.auth import hash_key
from llmroute.testing.behaviours import Ok
from llmroute.testing.upstream import FakeUpstream

from .support import GatewayServer, Serve, user

ON: dict[str, Any] = {"cache": {"response": {"enabled": True}}}
ZERO = {"temperature": 0}
KEY_A, KEY_B, KEY_A2 = "lr-tenant-a-key", "lr-tenant-b-key", "lr-tenant-a-second-key"
KEYS: dict[str, Any] = {"keys": [
    {"name": "a", "hash": hash_key(KEY_A), "team": "red"},
    {"name": "a2", "hash": hash_key(KEY_A2), "team": "red"},
    {"name": "b", "hash": hash_key(KEY_B), "team": "blue"},
]}


def ask(client: openai.OpenAI, text: str = "hello there", *, headers: dict[str, str] | None = None,
        **params: Any) -> tuple[Any, Any]:
    raw = client.chat.completions.with_raw_response.create(
        model=params.pop("model", "fake/mid"), messages=user(text), **{**ZERO, **params},
        extra_headers=headers or {})
    return raw.headers, raw.parse()


def test_a_repeat_is_a_hit_that_costs_nothing(serve: Serve, up: FakeUpstream) -> None:
    gw = serve(ON)
    with gw.client() as client:
        first_headers, first = ask(client)
        again_headers, again = ask(client)
    assert first_headers["x-llmroute-cache"] == "miss"
    assert again_headers["x-llmroute-cache"] == "hit"
    assert up.call_count() == 1
    assert again.choices[0].message.content == first.choices[0].message.content
    assert again_headers["x-llmroute-cost-usd"] == "0"
    assert again.usage is not None and again.usage.model_extra == {"cost": 0}
    assert first.usage is not None and first.usage.model_extra["cost"] > 0
    assert again_headers["x-llmroute-model"] == "fake/mid"
    assert again_headers["x-llmroute-router"] == "cache"
