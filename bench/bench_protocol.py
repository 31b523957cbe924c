"""What the read deadlines cost (`server/protocol.py`): the server process's CPU per request for a
trivial ASGI app served by uvicorn's httptools protocol and by the guarded one, over one kept-alive
connection and over a fresh connection per request. Run by hand:
`python bench/bench_protocol.py [--requests N]`; results in docs/benchmarks.md."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time

SERVER = """
import sys, uvicorn
from llmroute.server.protocol import guarded_protocol
from llmroute.settings import ServerConfig
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})

http = guarded_protocol(ServerConfig()) if sys.argv[2] == "guarded" else HttpToolsProtocol
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), http=http, loop="uvloop",
            log_level="warning", access_log=False)
"""
REQUEST = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"


def cpu_s(pid: int) -> float:
    """user + system CPU seconds of a process."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ask(sock: socket.socket) -> None:
    sock.sendall(REQUEST)
    data = b""
    while not data.endswith(b"ok"):
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"the server closed the connection after {data!r}")
        data += chunk


def run(kind: str, requests: int, keep_alive: bool) -> float:
    """µs of server CPU per request."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port), kind])
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.05)
        sock = socket.create_connection(("127.0.0.1", port))
        ask(sock)
        start = cpu_s(proc.pid)
        for _ in range(requests):
            if not keep_alive:
                sock.close()
                sock = socket.create_connection(("127.0.0.1", port))
            ask(sock)
        used = cpu_s(proc.pid) - start
        sock.close()
        return used / requests * 1e6
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5, help="alternating runs; the best counts")
    args = parser.parse_args()
    for keep_alive in (True, False):
        best = {"httptools": float("inf"), "guarded": float("inf")}
        for _ in range(args.rounds):
            for kind in best:
                best[kind] = min(best[kind], run(kind, args.requests, keep_alive))
        for kind, us in best.items():
            print(f"{kind:9} {'kept-alive' if keep_alive else 'new conn.':10} "
                  f"{us:6.1f} µs CPU per request (best of {args.rounds})")


if __name__ == "__main__":
    main()
