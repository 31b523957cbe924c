"""Load generators: wrk (non-streaming, with a Lua script carrying the POST body) and the streaming client.

wrk reports through the script's ``done()`` hook: completed requests, socket errors (connect, read,
write, timeout), non-2xx/3xx answers (``errors.status``) and latency percentiles in microseconds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from procs import taskset_prefix

HERE = Path(__file__).resolve().parent

LUA = """\
wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
{headers}
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"mean_us":%.1f,"max_us":%d}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.mean, latency.max))
end
"""


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    socket_errors: int      # connect + read + write + timeout
    non2xx: int             # wrk's errors.status: answers with a status >= 400
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    mean_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def ok(self) -> int:
        return max(self.requests - self.non2xx, 0)


def ensure_wrk(install: bool) -> str | None:
    """Path to wrk; with install=True try `apt-get install -y wrk` (Debian) when it is missing."""
    path = shutil.which("wrk")
    if path or not install:
        return path
    if shutil.which("apt-get") is None:
        return None
    print("wrk not found: apt-get install -y wrk ...", file=sys.stderr)
    subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], capture_output=True, check=False)
    return shutil.which("wrk")


def write_lua(path: Path, body: dict[str, object], headers: dict[str, str]) -> Path:
    text = json.dumps(body, separators=(",", ":"))
    lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    path.write_text(LUA.format(body=text, headers=lines))
    return path


def run_wrk(wrk: str, url: str, script: Path, *, connections: int, duration_s: float,
            cpus: str | None, timeout_s: float = 30.0) -> WrkResult:
    threads = 1 if connections < 16 else 2
    duration_s = max(1, round(duration_s))  # wrk takes whole seconds only
    argv = [*taskset_prefix(cpus), wrk, f"-t{threads}", f"-c{connections}", f"-d{duration_s:g}s",
            f"--timeout={timeout_s:g}s", "-s", str(script), url]
    done = subprocess.run(argv, capture_output=True, text=True, check=False,
                          timeout=duration_s + timeout_s + 30)
    for line in done.stdout.splitlines():
        if line.startswith("WRKJSON "):
            d = json.loads(line[8:])
            return WrkResult(
                requests=d["requests"], duration_s=d["duration_us"] / 1e6,
                socket_errors=d["connect"] + d["read"] + d["write"] + d["timeout"], non2xx=d["status"],
                p50_ms=d["p50_us"] / 1000, p90_ms=d["p90_us"] / 1000, p99_ms=d["p99_us"] / 1000,
                p999_ms=d["p999_us"] / 1000, mean_ms=d["mean_us"] / 1000)
    raise RuntimeError(f"wrk gave no result ({done.returncode}): {done.stdout[-500:]} {done.stderr[-500:]}")


def run_stream_client(url: str, body: dict[str, object], headers: dict[str, str], *, requests: int,
                      concurrency: int, cpus: str | None, python: str = sys.executable,
                      timeout_s: float = 300.0) -> dict[str, object]:
    argv = [*taskset_prefix(cpus), python, str(HERE / "stream_client.py"), "--url", url,
            "--body", json.dumps(body), "--requests", str(requests), "--concurrency", str(concurrency)]
    for k, v in headers.items():
        argv += ["--header", f"{k}: {v}"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout_s)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"stream client failed ({done.returncode}): {done.stderr[-800:]}")
    result: dict[str, object] = json.loads(lines[-1])
    return result
