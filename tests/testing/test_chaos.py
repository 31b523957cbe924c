"""The fake upstream's chaos mode: each fault on both wire protocols, streaming and not, seen by a
raw HTTP client (what the gateway's transport sees), and the seeded draw."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from llmroute.testing.behaviours import FAULTS, Chaos, CutStream, Ok, Reset, SlowStream
from llmroute.testing.upstream import FakeUpstream

PROTOCOLS = ("openai", "anthropic")
MESSAGES = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeUpstream]:
    with FakeUpstream(seed=1) as upstream:
        yield upstream


@pytest.fixture
def up(server: FakeUpstream) -> Iterator[FakeUpstream]:
    server.reset()
    yield server
    server.reset()


@dataclass
class Seen:
    """What one request got: a status and headers, the body bytes received, how it ended."""

    ended: str  # "complete", "cut" (dropped mid-body or before any response), "reset", "timeout"
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    elapsed_s: float = 0.0

    def events(self) -> list[str]:
        """The SSE events received (one per blank-line-separated block)."""
        return [e for e in self.body.decode().split("\n\n") if e.strip()]


def request(protocol: str, stream: bool) -> tuple[str, dict[str, Any]]:
    if protocol == "openai":
        return "/v1/chat/completions", {"model": "gpt-x", "messages": MESSAGES, "stream": stream}
    return "/v1/messages", {"model": "claude-x", "max_tokens": 64, "messages": MESSAGES,
                            "stream": stream}


def observe(up: FakeUpstream, protocol: str, stream: bool, timeout_s: float = 2.0) -> Seen:
    """One request, read to its end (or its failure) with a raw client."""
    path, body = request(protocol, stream)
    seen = Seen("complete")
    started = time.monotonic()
    try:
        with httpx.stream("POST", up.base_url + path, json=body, timeout=timeout_s,
                          headers={"anthropic-version": "2023-06-01"}) as response:
            seen.status, seen.headers = response.status_code, dict(response.headers)
            for piece in response.iter_raw():
                seen.body += piece
    except httpx.ReadTimeout:
        seen.ended = "timeout"
    except httpx.RemoteProtocolError:
        seen.ended = "cut"
    except httpx.ReadError as exc:
        seen.ended = "reset" if "reset by peer" in str(exc) else f"{exc!r}"  # ECONNRESET
    seen.elapsed_s = time.monotonic() - started
    return seen


def only(fault: str, **options: float) -> Chaos:
    """Chaos that always plays `fault`."""
    return Chaos(**{fault: 1.0}, **options)  # type: ignore[arg-type]


CASES = [(p, s) for p in PROTOCOLS for s in (False, True)]
IDS = [f"{p}-{'stream' if s else 'json'}" for p, s in CASES]


@pytest.mark.parametrize(("protocol", "stream"), CASES, ids=IDS)
def test_rate_limit_is_a_429_with_retry_after(up: FakeUpstream, protocol: str,
                                              stream: bool) -> None:
    up.set_default("*", only("rate_limit", retry_after_s=3))
    seen = observe(up, protocol, stream)
    assert (seen.ended, seen.status, seen.headers["retry-after"]) == ("complete", 429, "3")
    error = json.loads(seen.body)["error"]
    assert error["type"] == "rate_limit_error"
    assert up.faults == {"rate_limit": 1}


@pytest.mark.parametrize(("fault", "status"), [("server_error", 500), ("unavailable", 503)])
@pytest.mark.parametrize(("protocol", "stream"), CASES, ids=IDS)
def test_server_errors(up: FakeUpstream, protocol: str, stream: bool, fault: str,
                       status: int) -> None:
    up.set_default("*", only(fault))
    seen = observe(up, protocol, stream)
    assert (seen.ended, seen.status) == ("complete", status)
    assert json.loads(seen.body)["error"]["type"] in ("server_error", "api_error")


@pytest.mark.parametrize(("protocol", "stream"), CASES, ids=IDS)
def test_reset_drops_the_connection_before_any_byte(up: FakeUpstream, protocol: str,
                                                    stream: bool) -> None:
    up.set_default("*", only("reset"))
    seen = observe(up, protocol, stream)
    assert (seen.ended, seen.status, seen.body) == ("reset", None, b"")


def test_reset_is_a_tcp_rst(up: FakeUpstream) -> None:
    up.script("gpt-x", Reset())
    body = json.dumps({"model": "gpt-x", "messages": MESSAGES}).encode()
    with socket.create_connection(("127.0.0.1", up.port), timeout=2) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)
        with pytest.raises(ConnectionResetError):
            assert sock.recv(1024) == b"", "closed by FIN, not reset"


@pytest.mark.parametrize(("protocol", "stream"), CASES, ids=IDS)
def test_hang_outlasts_the_client_timeout(up: FakeUpstream, protocol: str, stream: bool) -> None:
    up.set_default("*", only("hang"))
    seen = observe(up, protocol, stream, timeout_s=0.3)
    assert (seen.ended, seen.status, seen.body) == ("timeout", None, b"")
    assert seen.elapsed_s >= 0.3


@pytest.mark.parametrize(("protocol", "stream"), CASES, ids=IDS)
def test_slow_stream_completes_late(up: FakeUpstream, protocol: str, stream: bool) -> None:
    up.set_default("*", only("slow_stream", slow_chunk_delay_s=0.05))
    seen = observe(up, protocol, stream)
    assert (seen.ended, seen.status) == ("complete", 200)
    if not stream:
        assert seen.elapsed_s >= 0.05
        assert json.loads(seen.body)["usage"]
        return
    events = seen.events()
    assert seen.elapsed_s >= 0.05 * len(events)
    assert events[-1].endswith("[DONE]" if protocol == "openai" else '"message_stop"}')


@pytest.mark.parametrize(("protocol", "stream"), CASES, ids=IDS)
def test_cut_stream_ends_without_its_terminal_event(up: FakeUpstream, protocol: str,
                                                    stream: bool) -> None:
    up.set_default("*", only("cut_stream", cut_after_chunks=2))
    seen = observe(up, protocol, stream)
    assert seen.ended == "cut"
    if not stream:
        assert (seen.status, seen.body) == (None, b"")
        return
    assert seen.status == 200
    assert len(seen.events()) == 2
    assert b"[DONE]" not in seen.body and b"message_stop" not in seen.body


def test_no_fault_answers_normally(up: FakeUpstream) -> None:
    up.set_default("*", Chaos())
    seen = observe(up, "openai", True)
    assert (seen.ended, seen.status) == ("complete", 200)
    assert seen.events()[-1] == "data: [DONE]"
    assert up.faults == {"ok": 1}


def test_draws_follow_the_probabilities_and_the_seed(up: FakeUpstream) -> None:
    up.set_default("*", Chaos(rate_limit=0.2, server_error=0.2, unavailable=0.2))
    path, body = request("openai", False)

    def statuses() -> list[int]:
        with httpx.Client(base_url=up.base_url) as client:
            return [client.post(path, json=body).status_code for _ in range(300)]

    first = statuses()
    counts = up.faults
    assert sum(counts.values()) == 300
    for fault, status in (("rate_limit", 429), ("server_error", 500), ("unavailable", 503)):
        assert 35 <= counts[fault] <= 85, counts  # 60 expected; ±3.3 sigma
        assert first.count(status) == counts[fault]
    assert first.count(200) == counts["ok"]
    up.reset()
    up.set_default("*", Chaos(rate_limit=0.2, server_error=0.2, unavailable=0.2))
    assert statuses() == first  # reset() re-seeds: the same run again


def test_chaos_in_a_script_draws_once_then_the_script_goes_on(up: FakeUpstream) -> None:
    up.script("gpt-x", only("server_error"), Ok(text="scripted"))
    assert observe(up, "openai", False).status == 500
    assert json.loads(observe(up, "openai", False).body)["choices"][0]["message"]["content"] \
        == "scripted"


def test_chaos_is_validated_and_spreads_uniformly() -> None:
    with pytest.raises(ValueError, match="sum to at most 1"):
        Chaos(rate_limit=0.7, hang=0.5)
    with pytest.raises(ValueError):
        Chaos(reset=-0.1)
    chaos = Chaos.uniform(0.7, slow_chunk_delay_s=0.2)
    assert set(chaos.odds()) == set(FAULTS)
    assert all(p == pytest.approx(0.1) for p in chaos.odds().values())
    assert chaos.fault(0.0) == "rate_limit"
    assert chaos.fault(0.65) == "cut_stream"
    assert chaos.fault(0.71) is None
    assert chaos.behaviour("slow_stream") == SlowStream(0.2)
    assert chaos.behaviour("cut_stream") == CutStream(2)
    assert chaos.behaviour(None) == Ok()


def test_the_command_line_turns_chaos_on_for_every_model() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "llmroute.testing", "--chaos", "1", "--seed",
                             "3", "--retry-after", "2"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip()
        seen: list[str] = []
        with httpx.Client(base_url=base, timeout=0.3) as client:
            for i in range(40):
                try:
                    response = client.post("/v1/chat/completions", json={
                        "model": f"m{i % 3}", "messages": MESSAGES})
                    seen.append(f"{response.status_code} {response.headers.get('retry-after')}")
                except httpx.HTTPError as exc:
                    seen.append(type(exc).__name__)
    finally:
        proc.terminate()
        proc.wait(10)
    assert "429 2" in seen and "500 None" in seen and "503 None" in seen
    assert "ReadTimeout" in seen  # a hang
    assert seen.count("200 None") < 16  # only the slow answers (one request in seven) succeed
