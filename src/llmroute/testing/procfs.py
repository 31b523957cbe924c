"""What a process holds, read from Linux's /proc: resident memory, open file descriptors, and its
TCP connections to a port (e.g. a gateway's connections to its upstream). Used by the chaos test and
the soak benchmark to see that load leaves nothing behind. Linux only; no third-party dependency."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICK = os.sysconf("SC_CLK_TCK")
#: /proc/net/tcp states that hold a connection (all but LISTEN = 0A and CLOSE = 07).
_LISTEN, _CLOSE = "0A", "07"


def rss_bytes(pid: int) -> int:
    """Resident memory of `pid`, bytes."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) `pid` has used so far, seconds."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()  # the name may hold spaces and parentheses
    return (int(fields[11]) + int(fields[12])) / _TICK


def open_fds(pid: int) -> int:
    """How many file descriptors `pid` has open."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    base = f"/proc/{pid}/fd"
    for name in os.listdir(base):
        try:
            target = os.readlink(f"{base}/{name}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


#: /proc/net/tcp's state codes (include/net/tcp_states.h).
TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1",
              "05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT",
              "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"}


def tcp_connections(pid: int, remote_port: int | None = None) -> int:
    """TCP connections (any state but LISTEN and CLOSE) that `pid` holds open, to `remote_port`
    when given (IPv4 and IPv6)."""
    return sum(tcp_states(pid, remote_port).values())


def tcp_states(pid: int, remote_port: int | None = None) -> Counter[str]:
    """`tcp_connections` by state name (ESTABLISHED, CLOSE_WAIT: the peer closed, this process
    has not, ...)."""
    inodes = _socket_inodes(pid)
    count: Counter[str] = Counter()
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            if fields[9] not in inodes or fields[3] in (_LISTEN, _CLOSE):
                continue
            if remote_port is None or int(fields[2].rsplit(":", 1)[1], 16) == remote_port:
                count[TCP_STATES.get(fields[3], fields[3])] += 1
    return count
