"""The server as a process sees it: graceful shutdown finishes in-flight requests, and plain curl
works against it."""

from __future__ import annotations

import gc
import json
import shutil
import subprocess
import threading
from typing import Any

import openai
import pytest

from llmroute.testing.behaviours import Ok
from llmroute.testing.upstream import FakeUpstream

from .support import GatewayServer, Serve, assert_openai_error, user


def in_background(call: Any) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = call()
        except Exception as exc:  # reported by the test
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def test_shutdown_finishes_a_request_in_flight(gw: GatewayServer, up: FakeUpstream) -> None:
    up.script("mini-up", Ok(delay_s=1))
    client = gw.client()
    thread, result = in_background(lambda: client.chat.completions.with_raw_response.create(
        model="fake/mini", messages=user("slow one")))
    assert up.wait_for_requests(1, timeout_s=5)

    gw.server.should_exit = True            # what SIGTERM does
    thread.join(10)
    gw.thread.join(10)

    assert "error" not in result, result.get("error")
    raw = result["value"]
    assert raw.status_code == 200
    assert raw.parse().choices[0].message.content == "echo from mini-up: slow one"
    assert raw.headers["x-llmroute-cost-usd"]
    assert not gw.thread.is_alive()
    client.close()


def test_shutdown_finishes_a_stream_in_flight(gw: GatewayServer, up: FakeUpstream) -> None:
    up.script("mini-up", Ok(delay_s=1))
    client = gw.client()
    thread, result = in_background(lambda: list(client.chat.completions.create(
        model="fake/mini", messages=user("slow stream"), stream=True)))
    assert up.wait_for_requests(1, timeout_s=5)

    gw.server.should_exit = True
    thread.join(10)

    assert "error" not in result, result.get("error")
    text = "".join(c.choices[0].delta.content or "" for c in result["value"])
    assert text == "echo from mini-up: slow stream"
    client.close()


def test_no_new_requests_after_shutdown(gw: GatewayServer) -> None:
    gw.stop()
    with gw.client(timeout=2.0) as client, pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="auto", messages=user("hi"))


curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def run_curl(*args: str) -> str:
    done = subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True,
                          text=True, check=True, timeout=20)
    return done.stdout


@curl
def test_curl_chat_completion(gw: GatewayServer) -> None:
    body = json.dumps({"model": "auto", "messages": user("hello from curl")})
    out = run_curl("-X", "POST", f"{gw.base_url}/chat/completions",
                   "-H", "Content-Type: application/json", "-H", "Authorization: Bearer anything",
                   "-d", body)

    answer = json.loads(out)
    assert answer["object"] == "chat.completion"
    assert answer["model"] == "fake/mini"
    assert answer["choices"][0]["message"] == {"role": "assistant",
                                               "content": "echo from mini-up: hello from curl",
                                               "refusal": None}


@curl
def test_curl_error_case(gw: GatewayServer) -> None:
    body = json.dumps({"model": "nope", "messages": user("hi")})
    out = run_curl("-X", "POST", f"{gw.url}/v1/chat/completions", "-d", body,
                   "-w", "\n%{http_code}")

    text, status = out.rsplit("\n", 1)
    assert status == "404"
    assert assert_openai_error(json.loads(text))["code"] == "model_not_found"


@curl
def test_curl_stream(gw: GatewayServer) -> None:
    body = json.dumps({"model": "fake/mid", "messages": user("stream me"), "stream": True})
    out = run_curl("-N", "-X", "POST", f"{gw.url}/v1/chat/completions",
                   "-H", "Content-Type: application/json", "-d", body)

    events = [line[len("data: "):] for line in out.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["model"] for c in chunks} == {"fake/mid"}
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == (
        "echo from mid-up: stream me")


def test_startup_heap_is_frozen_out_of_the_collector(serve: Serve) -> None:
    """What the gateway builds at startup (settings, catalog, routers, the learned artifact) is
    moved out of the cyclic collector's generations once serving starts (`gc.freeze`): full
    collections then walk only what requests allocate, not ~60,000 long-lived objects
    (`bench/gateway/tail.py` saw no gen-2 collection while serving; docs/benchmarks.md)."""
    gc.unfreeze()  # whatever an earlier test froze
    try:
        assert gc.get_freeze_count() == 0
        serve()
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
