"""Claude Code's model names through a real gateway, with the anthropic SDK as the client: a
dated snapshot name resolves to the configured undated model, `model_aliases:` send other names
to a model, a tier or `auto`, an unknown name is still a 404, and the ledger keeps both the name
asked (in the entry's reason) and the model used."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import pytest

from llmroute.testing.behaviours import server_error
from llmroute.testing.upstream import FakeUpstream

from .support import OPEN_KEY, GatewayServer, Serve
from .test_ledger import ledger_config, wait_for_entries

SONNET = "anthropic/claude-sonnet-4-5"
CONFIG: dict[str, Any] = {
    "models": {SONNET: {"deployment": "fakeant", "upstream_name": "claude-sonnet-up",
                        "input_per_m": "3", "output_per_m": "15", "context_window": 200000}},
    "model_aliases": {"claude-3-5-haiku-20241022": "simple", "claude-opus-*": "auto"},
}
HI = [{"role": "user", "content": "hello there"}]


def sdk(gw: GatewayServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=OPEN_KEY, max_retries=0, timeout=20.0)


def test_claude_code_names_resolve_and_the_ledger_keeps_both(serve: Serve, up: FakeUpstream,
                                                             tmp_path: Path) -> None:
    client = sdk(serve({**CONFIG, **ledger_config(tmp_path)}))
    snapshot = client.messages.with_raw_response.create(
        model="claude-sonnet-4-5-20250929", max_tokens=64, messages=HI)  # type: ignore[arg-type]
    assert snapshot.headers["x-llmroute-model"] == SONNET
    assert snapshot.parse().model == SONNET
    assert up.requests[-1].model == "claude-sonnet-up"
    tier = client.messages.with_raw_response.create(
        model="claude-3-5-haiku-20241022", max_tokens=64, messages=HI)  # type: ignore[arg-type]
    assert tier.headers["x-llmroute-model"] == "fake/mini"  # the tier `simple`'s model
    routed = client.messages.with_raw_response.create(
        model="claude-opus-4-1-20250805", max_tokens=64, messages=HI)  # type: ignore[arg-type]
    assert routed.headers["x-llmroute-model"] in {"fake/mini", "fake/mid", "fake/big"}
    entries = {e.request_id: e for e in wait_for_entries(tmp_path, 3)}
    first = entries[snapshot.headers["x-llmroute-request-id"]]
    assert first.model == SONNET and first.reason is not None
    assert first.reason.startswith("'claude-sonnet-4-5-20250929' -> anthropic/claude-sonnet-4-5 "
                                   "(snapshot name)")
    second = entries[tier.headers["x-llmroute-request-id"]]
    assert second.model == "fake/mini" and second.reason is not None
    assert "'claude-3-5-haiku-20241022' -> simple" in second.reason
    third = entries[routed.headers["x-llmroute-request-id"]]
    assert third.policy is not None  # routed by a policy, as `auto` is
    assert third.reason is not None and "alias pattern 'claude-opus-*'" in third.reason


def test_a_tier_alias_falls_back_along_the_tier(serve: Serve, up: FakeUpstream) -> None:
    up.script("mini-up", server_error(), server_error(), server_error())
    raw = sdk(serve(CONFIG)).messages.with_raw_response.create(
        model="claude-3-5-haiku-20241022", max_tokens=64, messages=HI)  # type: ignore[arg-type]
    assert raw.headers["x-llmroute-model"] == "anthropic-ish/claude"  # simple's fallback


def test_an_unknown_name_is_still_a_404(serve: Serve, up: FakeUpstream) -> None:
    with pytest.raises(anthropic.NotFoundError):
        sdk(serve(CONFIG)).messages.create(model="claude-haiku-4-5-20251001", max_tokens=64,
                                           messages=HI)  # type: ignore[arg-type]
    assert not up.requests
