"""Real servers for the gateway's integration tests: the fake upstream on a loopback port, the gateway
served by uvicorn in a background thread, and the official `openai` SDK clients pointed at it.

Configs are dicts (the base in `support.py`, deep-merged with each test's overrides) written to a YAML
file and loaded with `llmroute.config.load`, exactly as a user's file would be.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from llmroute.config import load
from llmroute.server.app import create_app
from llmroute.testing.upstream import FakeUpstream

from .support import ENV, UPSTREAM_KEY, GatewayServer, Serve, base_config, merge


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    """One fake OpenAI + Anthropic upstream per test module; it requires `UPSTREAM_KEY`."""
    with FakeUpstream(api_key=UPSTREAM_KEY) as up:
        yield up


@pytest.fixture
def up(upstream: FakeUpstream) -> Iterator[FakeUpstream]:
    """The module's upstream with no scripts, defaults or records left by earlier tests."""
    upstream.reset()
    yield upstream
    upstream.reset()


@pytest.fixture(scope="module")
def stopping() -> Iterator[list[GatewayServer]]:
    """Gateways asked to stop after their test; joined at the end of the module, so that uvicorn's
    shutdown (a few tenths of a second) overlaps the next tests instead of adding to them."""
    servers: list[GatewayServer] = []
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def serve(up: FakeUpstream, tmp_path: Path, stopping: list[GatewayServer]) -> Iterator[Serve]:
    """Start a gateway over `base_config(up)` deep-merged with `overrides`; stopped after the test."""
    started: list[GatewayServer] = []

    def start(overrides: Mapping[str, Any] | None = None, *,
              environ: Mapping[str, str] | None = None) -> GatewayServer:
        path = tmp_path / f"llmroute-{len(started)}.yaml"
        config = merge(base_config(up), overrides or {})
        # sort_keys=False: the order of `tiers:` is the ladder, cheapest first
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        settings = load(path, environ={})
        server = GatewayServer(create_app(settings, environ={**ENV, **(environ or {})}))
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.request_stop()
    stopping.extend(started)


@pytest.fixture
def gw(serve: Serve) -> GatewayServer:
    """A gateway with the base configuration."""
    return serve()


@pytest.fixture
def client(gw: GatewayServer) -> Iterator[openai.OpenAI]:
    """A sync openai SDK client for `gw` (no SDK retries)."""
    with gw.client() as c:
        yield c


@pytest.fixture
def http(gw: GatewayServer) -> Iterator[httpx.Client]:
    """A raw httpx client for `gw`."""
    with gw.http() as c:
        yield c

