"""llmroute.testing.procfs against this very process: its memory, its open files, and the TCP
connections it holds to a port (opened and closed here)."""

from __future__ import annotations

import os
import socket

from llmroute.testing.procfs import cpu_seconds, open_fds, rss_bytes, tcp_connections


def test_connections_to_a_port_are_counted_while_open() -> None:
    pid = os.getpid()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        assert tcp_connections(pid, port) == 0  # a listening socket is no connection
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        accepted = [server.accept()[0] for _ in clients]
        try:
            assert tcp_connections(pid, port) == 3  # the accepted ends have `port` as local port
            assert tcp_connections(pid) >= 6
        finally:
            for sock in clients + accepted:
                sock.close()
        assert tcp_connections(pid, port) == 0


def test_memory_files_and_cpu() -> None:
    pid = os.getpid()
    before = open_fds(pid)
    with open(__file__, "rb"):
        assert open_fds(pid) == before + 1
    assert open_fds(pid) == before
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert 10 * 2**20 < rss_bytes(pid) < total  # bytes, not kB or pages
    assert cpu_seconds(pid) > 0
