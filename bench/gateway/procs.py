"""Processes and /proc: start pinned servers, CPU time and RSS of a process tree, machine-wide busy CPU.

CPU time of a tree: the sum, over its live processes, of utime+stime+cutime+cstime from
/proc/<pid>/stat. A reaped child's time (and its reaped children's) is in its parent's cutime/cstime,
so nothing is counted twice and nothing that finished is lost, as long as its parent waited for it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # the command name may hold spaces and parentheses: split after the last ")"
    return raw[raw.rindex(")") + 2:].split()


def children_map() -> dict[int, list[int]]:
    """ppid -> pids, for every process on the machine."""
    out: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is None:
            continue
        out.setdefault(int(fields[1]), []).append(int(entry.name))
    return out


def tree(pid: int) -> list[int]:
    """pid and all its live descendants."""
    kids = children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, ()))
    return out


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user+system, reaped children included) of pid's process tree."""
    total = 0
    for p in tree(pid):
        fields = _stat_fields(p)
        if fields is not None:  # utime stime cutime cstime are fields 14-17 (1-based) of stat
            total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return total / CLK_TCK


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user+system, every thread) of the process pid alone, not its children."""
    fields = _stat_fields(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / CLK_TCK


def pin_descendants(pid: int, cpus: set[int]) -> list[int]:
    """Pin pid's live descendants (every thread of each; not pid itself) to `cpus`, which they
    would otherwise inherit from pid's pinning. Returns the processes pinned."""
    pinned = []
    for child in tree(pid)[1:]:
        try:
            for task in os.scandir(f"/proc/{child}/task"):
                os.sched_setaffinity(int(task.name), cpus)
        except (FileNotFoundError, ProcessLookupError):
            continue
        pinned.append(child)
    return pinned


def tree_rss_mib(pid: int) -> float:
    """Resident memory of pid's process tree (the sum of each process's RSS), MiB."""
    total = 0
    for p in tree(pid):
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * PAGE
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return total / 2**20


def busy_cpu_s() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    return (user + nice + system + irq + softirq) / CLK_TCK, steal / CLK_TCK


def loadavg() -> tuple[float, float, float]:
    parts = Path("/proc/loadavg").read_text().split()
    return float(parts[0]), float(parts[1]), float(parts[2])


def ncpus() -> int:
    return len(os.sched_getaffinity(0))


@dataclass
class Meter:
    """CPU of our own process tree vs the whole machine over an interval: what is foreign load."""

    root: int = field(default_factory=os.getpid)
    t0: float = 0.0
    busy0: float = 0.0
    steal0: float = 0.0
    ours0: float = 0.0

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.busy0, self.steal0 = busy_cpu_s()
        self.ours0 = tree_cpu_s(self.root)

    def stop(self) -> tuple[float, float, float]:
        """(foreign cores, steal cores, elapsed s): mean CPU not used by our tree, in cores."""
        busy, steal = busy_cpu_s()
        ours = tree_cpu_s(self.root)
        elapsed = max(time.monotonic() - self.t0, 1e-9)
        foreign = (busy - self.busy0) - (ours - self.ours0)
        return max(foreign, 0.0) / elapsed, (steal - self.steal0) / elapsed, elapsed


def taskset_prefix(cpus: str | None) -> list[str]:
    if not cpus or shutil.which("taskset") is None:
        return []
    return ["taskset", "-c", cpus]


@dataclass
class Server:
    """A server process we started (in its own process group), with its log file."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


def start_server(name: str, argv: list[str], *, cpus: str | None, env: dict[str, str],
                 log_dir: Path, cwd: Path | None = None) -> Server:
    log = log_dir / f"{name}.log"
    handle = log.open("wb")
    proc = subprocess.Popen(taskset_prefix(cpus) + argv, stdout=handle, stderr=subprocess.STDOUT,
                            env=env, cwd=cwd, start_new_session=True)
    handle.close()
    return Server(name, proc, log)


def wait_http(url: str, server: Server, timeout: float, headers: dict[str, str] | None = None) -> None:
    """Poll url until it answers (any status below 500); raise with the server's log tail if not."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"{server.name} exited ({server.proc.returncode}):\n{server.log_tail()}")
        try:
            req = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(req, timeout=2) as resp:
                if resp.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
            last = f"HTTP {exc.code}"
        except (OSError, urllib.error.URLError) as exc:
            last = str(exc)
        time.sleep(0.25)
    raise RuntimeError(f"{server.name} not ready after {timeout:.0f}s ({last}):\n{server.log_tail()}")


def free_port() -> int:
    """A free port below the ephemeral range (20000-29999), so that no one's outgoing connection or
    another tool's "port 0" server lands on it and stray traffic does not reach our servers."""
    import random
    import socket

    for _ in range(200):
        port = random.randint(20000, 29999)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-29999")
