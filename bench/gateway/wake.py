"""What waking the other vCPU costs after a pause (issue 17): the floor under any gateway's
streaming TTFT on a VM. One loopback TCP connection between two tiny blocking Python processes,
the sender on CPU 1 and the receiver on CPU 0 (TCP_NODELAY both ways); the sender pauses, stamps
and sends; the receiver stamps when it runs and sends the difference back. A pause lets the
receiver's vCPU go idle (halt), so its wake-up costs what a gateway idle between a model's tokens
pays, without the gateway's cold code.

    python bench/gateway/wake.py [--sends 200] [--pauses 0,1,5,20]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import time


def receive(conn: socket.socket) -> None:
    """On CPU 0: answer each stamp with how long ago it was taken (ns)."""
    os.sched_setaffinity(0, {0})
    while data := conn.recv(64):
        now = time.monotonic_ns()
        conn.sendall(str(now - int(data)).encode().ljust(32))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sends", type=int, default=200)
    p.add_argument("--pauses", default="0,1,5,20", help="ms")
    a = p.parse_args(argv)
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    if os.fork() == 0:
        conn, _ = server.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        receive(conn)
        os._exit(0)
    os.sched_setaffinity(0, {1})
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for pause in (float(x) for x in a.pauses.split(",")):
        took = []
        for _ in range(a.sends):
            if pause:
                time.sleep(pause / 1000)
            sock.sendall(str(time.monotonic_ns()).encode().ljust(32))
            took.append(int(sock.recv(64)) / 1000)
        took.sort()
        print(f"pause {pause:g} ms: send → the receiver on the other CPU runs, p50 "
              f"{statistics.median(took):.0f} µs, p90 {took[int(len(took) * 0.9)]:.0f} µs")
    sock.close()
    os.wait()


if __name__ == "__main__":
    main()
