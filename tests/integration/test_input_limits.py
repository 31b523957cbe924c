"""Input limits against a real `llmroute serve` process, with raw sockets: headers and bodies sent
byte by byte too slowly are cut off (408, then closed), an idle connection is closed, headers over
the size limit get a 431, too many messages a 400 — and a normal client is served meanwhile."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from llmroute.testing.behaviours import Ok
from llmroute.testing.upstream import FakeUpstream

from .support import assert_openai_error
from .test_serve_process import serve, stop

LIMITS = {"header_timeout_s": 1.0, "body_timeout_s": 1.0, "max_header_bytes": 4096,
          "max_messages": 5}
CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with FakeUpstream(record=False) as up:
        up.set_default("*", Ok())
        proc, url, _ = serve(up, tmp_path_factory.mktemp("limits"), sections={"server": LIMITS})
        try:
            yield url
        finally:
            assert proc.poll() is None, "the gateway died"
            stop(proc)


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def trickle(sock: socket.socket, data: bytes, every_s: float, stop_on_close: bool = True) -> None:
    """Send `data` one byte every `every_s` seconds (until the server closes the connection)."""
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            if stop_on_close:
                return
            raise
        time.sleep(every_s)


def served_meanwhile(url: str, seconds: float) -> list[float]:
    """Chat requests by a normal client for `seconds`: the latency of each (all must be 200)."""
    latencies = []
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    end = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=5) as client:
        while time.monotonic() < end:
            start = time.monotonic()
            response = client.post(CHAT, json=body)
            assert response.status_code == 200, response.text
            latencies.append(time.monotonic() - start)
            time.sleep(0.05)
    return latencies


def status_and_error(response: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = response.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower()
    return int(head.split()[1]), assert_openai_error(orjson.loads(body))


def slowloris(url: str, payload: bytes, out: list[tuple[float, bytes]]) -> None:
    """One slow client: trickles `payload` (10 bytes/s), records when and what the server said."""
    sock = connect(url)
    start = time.monotonic()

    def read() -> None:
        response = read_all(sock)
        out.append((time.monotonic() - start, response))

    reader = threading.Thread(target=read)
    reader.start()
    trickle(sock, payload, 0.1)
    reader.join(10)
    sock.close()


HEADERS = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"


def test_slow_headers_are_cut_off_while_others_are_served(gateway: str) -> None:
    results: list[tuple[float, bytes]] = []
    clients = [threading.Thread(target=slowloris, args=(gateway, HEADERS * 3, results))
               for _ in range(20)]
    for client in clients:
        client.start()
    latencies = served_meanwhile(gateway, 1.5)
    for client in clients:
        client.join(10)
    assert len(results) == 20
    for elapsed, response in results:
        assert 0.9 < elapsed < 3, elapsed
        status, error = status_and_error(response)
        assert status == 408 and error["code"] == "request_timeout"
    # served before the slow clients' 1 s deadline: nobody waited for them (the margin is for a
    # loaded 2-core machine; a stalled server would make these ≥ 1 s)
    assert len(latencies) >= 5 and max(latencies) < 0.8, latencies


def test_a_slow_body_is_cut_off(gateway: str) -> None:
    body = b'{"model": "auto", "messages": [{"role": "user", "content": "hi"}]}'
    head = HEADERS + b"content-length: %d\r\n\r\n" % len(body)
    results: list[tuple[float, bytes]] = []
    sock = connect(gateway)
    sock.sendall(head)
    start = time.monotonic()
    thread = threading.Thread(target=trickle, args=(sock, body, 0.1))
    thread.start()
    latencies = served_meanwhile(gateway, 1.2)
    response = read_all(sock)
    results.append((time.monotonic() - start, response))
    thread.join(10)
    sock.close()
    status, error = status_and_error(response)
    assert status == 408 and "body" in str(error["message"])
    assert 0.9 < results[0][0] < 3
    assert max(latencies) < 0.8, latencies  # served before the slow body's 1 s deadline


def test_an_idle_connection_is_closed_without_a_word(gateway: str) -> None:
    sock = connect(gateway)
    start = time.monotonic()
    assert read_all(sock) == b""
    assert 0.9 < time.monotonic() - start < 3
    sock.close()


def test_a_request_within_the_deadlines_is_served_on_a_kept_alive_connection(gateway: str) -> None:
    with httpx.Client(base_url=gateway, timeout=5) as client:
        body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
        assert client.post(CHAT, json=body).status_code == 200
        time.sleep(0.6)  # the read deadline runs per request, not per connection
        assert client.post(CHAT, json=body).status_code == 200
        time.sleep(0.6)
        assert client.post(CHAT, json=body).status_code == 200


def test_a_kept_alive_connection_gone_slow_is_cut_off(gateway: str) -> None:
    """The deadline is armed again for each request: a client fast on its first request and slow
    on its second is cut off on the second."""
    sock = connect(gateway)
    sock.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
    first = sock.recv(65536)
    assert first.startswith(b"HTTP/1.1 200"), first
    time.sleep(1.2)  # past the first request's header deadline: its timer has fired, idle
    start = time.monotonic()
    sent = threading.Thread(target=trickle, args=(sock, HEADERS * 3, 0.1))
    sent.start()
    response = read_all(sock)
    elapsed = time.monotonic() - start
    sent.join(10)
    sock.close()
    status, _ = status_and_error(response)
    assert status == 408 and 0.9 < elapsed < 3, (status, elapsed)


@pytest.mark.parametrize("slowly", [False, True])
def test_headers_over_the_size_limit_are_a_431(gateway: str, slowly: bool) -> None:
    big = HEADERS + b"x-filler: " + b"a" * 5000 + b"\r\n\r\n"
    sock = connect(gateway)
    if slowly:  # a header that never ends: refused once it passes the limit, not at a deadline
        sock.sendall(big[:3000])
        time.sleep(0.2)
        sock.sendall(big[3000:4500])
    else:
        sock.sendall(big)
    status, error = status_and_error(read_all(sock))
    sock.close()
    assert status == 431 and "4096" in str(error["message"])
    assert httpx.get(gateway + "/health").status_code == 200


def test_bytes_that_are_not_http_are_an_openai_shaped_400(gateway: str) -> None:
    sock = connect(gateway)
    sock.sendall(b"HELLO THERE \x00\x01\r\n\r\n")
    status, error = status_and_error(read_all(sock))
    sock.close()
    assert status == 400 and error["code"] == "invalid_http_request"


def test_too_many_messages_is_a_400(gateway: str) -> None:
    messages = [{"role": "user", "content": "hi"}] * 6
    response = httpx.post(gateway + CHAT, json={"model": "auto", "messages": messages})
    assert response.status_code == 400
    error = assert_openai_error(response.json())
    assert error["param"] == "messages" and "limit is 5" in error["message"]


def test_the_limits_are_in_the_default_config() -> None:
    from llmroute.config import load

    server = load(None).server
    assert (server.max_messages, server.max_header_bytes) == (2048, 32768)
    assert (server.header_timeout_s, server.body_timeout_s) == (10, 60)

