"""Structured logs: a real `llmroute serve` process with `telemetry.logs.format: json` writes one
JSON object per stderr line (lifecycle events, one `request` event per chat request whose
`request_id` is the response's `x-llmroute-request-id`), never a key or prompt text; the formatter
and the `auto` format on their own."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
import yaml

from integration.test_ledger_load import free_port
from llmroute.ledger.entry import LedgerEntry
from llmroute.server.auth import hash_key
from llmroute.telemetry.config import LogsConfig
from llmroute.telemetry.logs import JsonFormatter, RequestLog, log_config, resolved_format
from llmroute.testing.behaviours import Ok, server_error
from llmroute.testing.upstream import FakeUpstream

GATEWAY_KEY = "llmr-test-4d1c9e0b-SECRET"
UPSTREAM_KEY = "sk-upstream-logs-TOPSECRET"
PROMPT = "the password to the vault is swordfish"


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=UPSTREAM_KEY) as up:
        up.set_default("*", Ok())
        yield up


def start(up: FakeUpstream, tmp_path: Path, logs: dict[str, Any]
          ) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    config = {
        "providers": {"fake": {"type": "openai", "base_url": up.openai_base_url,
                               "api_key_env": "LOGS_TEST_UPSTREAM_KEY"}},
        "models": {"fake/a": {"deployment": "fake", "input_per_m": 1, "output_per_m": 2}},
        "tiers": {"simple": {"model": "fake/a"}, "medium": {"model": "fake/a"},
                  "complex": {"model": "fake/a"}},
        "policies": {"default": {"router": "rules", "default_tier": "simple"}},
        "resilience": {"retry": {"max_attempts": 1}},
        "keys": [{"name": "team-a-app", "hash": hash_key(GATEWAY_KEY)}],
        "ledger": {"enabled": False},
        "telemetry": {"logs": logs},
    }
    path = tmp_path / "llmroute.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMROUTE")}
    env["LOGS_TEST_UPSTREAM_KEY"] = UPSTREAM_KEY
    err = tmp_path / "stderr.log"
    proc = subprocess.Popen([sys.executable, "-m", "llmroute", "serve", "-c", str(path),
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=err.open("wb"), env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url, err
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"gateway did not start: {err.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) in (0, -signal.SIGTERM)


def test_serve_writes_json_lines_with_a_request_event_per_request(
        upstream: FakeUpstream, tmp_path: Path) -> None:
    proc, url, err = start(upstream, tmp_path, {"format": "json", "requests": True})
    try:
        client = openai.OpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
        ok = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": PROMPT}])
        streamed = client.chat.completions.with_raw_response.create(
            model="fake/a", messages=[{"role": "user", "content": PROMPT}], stream=True)
        list(streamed.parse())
        upstream.script("a", server_error())
        with pytest.raises(openai.APIStatusError) as failed:
            client.chat.completions.create(model="fake/a",
                                           messages=[{"role": "user", "content": PROMPT}])
    finally:
        stop(proc)

    text = err.read_text()
    events = [orjson.loads(line) for line in text.splitlines() if line.strip()]  # every line
    assert all({"ts", "level", "logger", "message", "pid"} <= set(e) for e in events)
    kinds = [e.get("event") for e in events]
    assert kinds.index("start") < kinds.index("ready") < kinds.index("shutdown")
    requests = {e["request_id"]: e for e in events if e.get("event") == "request"}
    error_id = failed.value.response.headers["x-llmroute-request-id"]
    ids = [ok.headers["x-llmroute-request-id"], streamed.headers["x-llmroute-request-id"], error_id]
    assert sorted(requests) == sorted(ids)
    first, stream, error = (requests[i] for i in ids)
    assert first["status"] == "ok" and first["http_status"] == 200 and first["model"] == "fake/a"
    assert first["key"] == "team-a-app" and first["policy"] == ok.headers["x-llmroute-policy"]
    assert first["cost_usd"] == float(ok.headers["x-llmroute-cost-usd"])
    assert first["latency_s"] > 0 and first["stream"] is False and first["cache"] is None
    assert stream["stream"] is True and stream["ttft_s"] is not None
    assert error["status"] == "error" and error["http_status"] == failed.value.status_code
    assert error["error_type"] == failed.value.body["type"]  # type: ignore[index]
    for secret in (GATEWAY_KEY, UPSTREAM_KEY, PROMPT, hash_key(GATEWAY_KEY)):
        assert secret not in text


def test_request_events_are_off_by_default(upstream: FakeUpstream, tmp_path: Path) -> None:
    proc, url, err = start(upstream, tmp_path, {"format": "json"})
    try:
        client = openai.OpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
        client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
    finally:
        stop(proc)
    events = [orjson.loads(line) for line in err.read_text().splitlines() if line.strip()]
    assert "ready" in [e.get("event") for e in events]
    assert not [e for e in events if e.get("event") == "request"]


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_is_text_on_a_terminal_and_json_otherwise() -> None:
    assert resolved_format(LogsConfig(), Tty()) == "text"
    assert resolved_format(LogsConfig(), io.StringIO()) == "json"
    assert resolved_format(LogsConfig(format="json"), Tty()) == "json"
    assert resolved_format(LogsConfig(format="text"), io.StringIO()) == "text"
    text = log_config(LogsConfig(), Tty())["formatters"]["main"]
    assert text["()"] == "uvicorn.logging.DefaultFormatter"


def test_the_cloud_sdks_never_log_below_warning_even_at_debug() -> None:
    # botocore's DEBUG lines hold the canonical request, session token included
    loggers = log_config(LogsConfig(level="debug"))["loggers"]
    assert loggers["llmroute"]["level"] == "DEBUG"
    assert loggers["botocore"] == loggers["azure"] == {"level": "WARNING"}


def test_the_json_formatter_keeps_extra_fields_and_exceptions() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("llmroute.test.json")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        logger.warning("store %s down", "ledger", extra={"event": "ledger_outage", "up": False})
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
        RequestLog(logger).record(LedgerEntry(
            request_id="req_1", ts=datetime.now(UTC), status="ok",
            http_status=200, key_name="k", model="m", latency_s=0.5))
    finally:
        logger.removeHandler(handler)
    first, second, third = (orjson.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "store ledger down" and first["level"] == "warning"
    assert first["event"] == "ledger_outage" and first["up"] is False
    assert first["logger"] == "llmroute.test.json" and first["ts"].endswith("+00:00")
    assert "ValueError: boom" in second["exc"]
    assert third["event"] == "request" and third["request_id"] == "req_1"
    assert third["cost_usd"] is None and "unpriced" in third["message"]


def test_a_key_reload_is_a_config_reload_event(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    from llmroute.cli.serve_cmd import reload_keys
    from llmroute.server.auth import KeyRing
    from llmroute.settings import KeyConfig

    keys = KeyRing([KeyConfig(name="old", hash=hash_key(GATEWAY_KEY))], {})
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({"keys": [{"name": "new", "hash": hash_key("llmr-new")}]}))
    with caplog.at_level(logging.INFO, logger="llmroute"):
        reload_keys(keys, tmp_path / "missing.yaml", {})
        reload_keys(keys, good, {})
    failed, done = (r for r in caplog.records if getattr(r, "event", None) == "config_reload")
    assert failed.ok is False and failed.levelname == "ERROR"  # type: ignore[attr-defined]
    assert done.ok is True  # type: ignore[attr-defined]
    assert GATEWAY_KEY not in caplog.text
