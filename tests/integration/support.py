"""Shared pieces of the integration tests: the base gateway config, a gateway served by uvicorn in a
background thread, and small assertion helpers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import openai
import uvicorn

from llmroute.config_text import default_config_text, parse_yaml
from llmroute.testing.upstream import FakeUpstream

#: The upstream API key: the fake refuses requests without it, and it must never leak to clients.
UPSTREAM_KEY = "sk-upstream-7f3a9c-TOPSECRET"
ENV = {"FAKE_OPENAI_KEY": UPSTREAM_KEY, "FAKE_ANTHROPIC_KEY": UPSTREAM_KEY}
#: The gateway key clients send when the gateway is open (no `keys:` configured).
OPEN_KEY = "unused-client-key"


#: The default policy the project started from: keyword rules (≥ 0.7), then the classifier
#: (target 0.7, ≥ 0.7), else `medium`.
SEED_CASCADE: dict[str, Any] = {
    "router": "cascade", "fallback_tier": "medium",
    "stages": [{"router": "rules", "threshold": 0.7},
               {"router": "classifier", "quality_target": 0.7, "threshold": 0.7}]}


def seed_policies() -> dict[str, Any]:
    """The embedded default policies, with `default` the seed cascade."""
    policies: dict[str, Any] = parse_yaml(default_config_text(), "defaults")["policies"]
    return {**policies, "default": SEED_CASCADE}


def base_config(up: FakeUpstream) -> dict[str, Any]:
    """Five models on an OpenAI-protocol deployment and one on an Anthropic-protocol one, three
    tiers, and small timeouts, backoffs and cooldowns so the suite stays fast."""
    timeout = {"connect_s": 2, "first_byte_s": 5, "total_s": 10}
    return {
        "providers": {
            "fake": {"type": "openai", "base_url": up.openai_base_url,
                     "api_key_env": "FAKE_OPENAI_KEY", "timeout": timeout},
            "fakeant": {"type": "anthropic", "base_url": up.anthropic_base_url,
                        "api_key_env": "FAKE_ANTHROPIC_KEY", "timeout": timeout},
        },
        "models": {
            "fake/mini": {"deployment": "fake", "upstream_name": "mini-up", "input_per_m": "0.15",
                          "output_per_m": "0.6", "context_window": 16000},
            "fake/mid": {"deployment": "fake", "upstream_name": "mid-up", "input_per_m": "0.4",
                         "output_per_m": "1.6", "context_window": 32000},
            "fake/big": {"deployment": "fake", "upstream_name": "big-up", "input_per_m": "2.5",
                         "output_per_m": "10", "context_window": 128000},
            "fake/huge": {"deployment": "fake", "upstream_name": "huge-up", "input_per_m": "5",
                          "output_per_m": "20", "context_window": 1000000},
            "fake/safe": {"deployment": "fake", "upstream_name": "safe-up", "input_per_m": "1",
                          "output_per_m": "2", "context_window": 64000},
            "anthropic-ish/claude": {"deployment": "fakeant", "upstream_name": "claude-up",
                                     "input_per_m": "3", "output_per_m": "15",
                                     "context_window": 200000},
        },
        "tiers": {
            "simple": {"model": "fake/mini", "fallbacks": ["anthropic-ish/claude"]},
            "medium": {"model": "fake/mid", "fallbacks": ["fake/mini"]},
            "complex": {"model": "fake/big", "fallbacks": ["fake/huge", "anthropic-ish/claude"]},
        },
        # `auto` routes by the seed cascade here (the keyword rules, then the classifier): this
        # suite tests the gateway's mechanics with routing its prompts were written for (the
        # shipped default policy is tested in tests/test_default_frontier.py, tests/test_engine.py).
        "policies": seed_policies(),
        # The ledger has its own tests (test_ledger.py); elsewhere it stays off.
        "ledger": {"enabled": False},
        "resilience": {
            "deadline_s": 10,
            "retry": {"max_attempts": 2, "backoff_base_s": 0.01, "backoff_max_s": 0.02,
                      "jitter": 0, "max_retry_after_s": 1},
            "cooldown": {"failures": 3, "cooldown_s": 0.5},
        },
    }


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` deep-merged over `base` (mappings merge key by key; anything else, and a policy
    spec — a mapping with a `router` — replaces)."""
    out = dict(base)
    for key, value in override.items():
        old = out.get(key)
        nested = isinstance(old, Mapping) and isinstance(value, Mapping) and "router" not in value
        out[key] = merge(old, value) if nested else value
    return out


class GatewayServer:
    """The gateway app served by uvicorn on 127.0.0.1:<free port> in a background thread."""

    def __init__(self, app: Any):
        self.app = app
        config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_config=None,
                                access_log=False, timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="gateway", daemon=True)
        self.port = 0

    def start(self) -> GatewayServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start")
            time.sleep(0.005)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def request_stop(self) -> None:
        """Ask uvicorn to shut down gracefully (as SIGTERM does), without waiting for it."""
        self.server.should_exit = True

    def stop(self) -> None:
        """Shut down and wait for the server thread to end."""
        self.request_stop()
        self.thread.join(10)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def client(self, api_key: str = OPEN_KEY, **options: Any) -> openai.OpenAI:
        """The sync openai SDK pointed at the gateway; every response is checked for leaks."""
        http = openai.DefaultHttpxClient(event_hooks={"response": [no_leak]})
        return openai.OpenAI(base_url=self.base_url, api_key=api_key, max_retries=0,
                             timeout=options.pop("timeout", 20.0), http_client=http, **options)

    def aclient(self, api_key: str = OPEN_KEY, **options: Any) -> openai.AsyncOpenAI:
        """The async openai SDK pointed at the gateway; every response is checked for leaks."""
        http = openai.DefaultAsyncHttpxClient(event_hooks={"response": [ano_leak]})
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=api_key, max_retries=0,
                                  timeout=options.pop("timeout", 20.0), http_client=http, **options)

    def http(self) -> httpx.Client:
        """A raw HTTP client for what the SDK cannot send; every response is checked for leaks."""
        return httpx.Client(base_url=self.url, timeout=20.0, event_hooks={"response": [no_leak]})


def _assert_no_key(response: httpx.Response, body: bytes | None) -> None:
    for name, value in response.headers.items():
        assert UPSTREAM_KEY not in f"{name}: {value}", "the upstream key leaked into a header"
    if body is not None:
        assert UPSTREAM_KEY.encode() not in body, "the upstream key leaked into a response body"


def no_leak(response: httpx.Response) -> None:
    """Response hook: the upstream key is in no header, nor in any body that is not a stream
    (streams are read as they arrive; `test_auth` greps whole streams)."""
    streaming = response.headers.get("content-type", "").startswith("text/event-stream")
    _assert_no_key(response, None if streaming else response.read())


async def ano_leak(response: httpx.Response) -> None:
    """`no_leak` for the async client."""
    streaming = response.headers.get("content-type", "").startswith("text/event-stream")
    _assert_no_key(response, None if streaming else await response.aread())


Serve = Callable[..., GatewayServer]


def user(text: str) -> list[dict[str, Any]]:
    """A one-message conversation."""
    return [{"role": "user", "content": text}]


def upstream_models(up: FakeUpstream) -> list[str | None]:
    """The upstream model of every request the fake received, in order."""
    return [r.model for r in up.requests]


def assert_openai_error(body: Any) -> dict[str, Any]:
    """`body` is `{"error": {"message", "type", "param", "code"}}`; returns the inner error."""
    assert isinstance(body, dict) and set(body) >= {"error"}, body
    error = body["error"]
    assert {"message", "type", "param", "code"} <= set(error), error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    return error
