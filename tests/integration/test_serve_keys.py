"""`llmroute serve` as a real process and its keys: rotated without a restart (edit the config,
SIGHUP: the old key 401, the new one 200, a request in flight finishes; an invalid config keeps the
old keys and says why), /metrics on a listener of its own, and an open gateway refused on a
non-loopback address unless config allows it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from llmroute.server.auth import hash_key
from llmroute.testing.behaviours import Ok
from llmroute.testing.upstream import FakeUpstream

from .test_ledger_load import free_port

OLD, NEW = "lr-before-rotation-1f2e", "lr-after-rotation-3d4c"


@pytest.fixture(scope="module")
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream(record=False) as upstream:
        upstream.set_default("*", Ok())
        upstream.set_default("slow-up", Ok(delay_s=1.5))
        yield upstream


def config(up: FakeUpstream, keys: list[dict[str, Any]], **server: Any) -> dict[str, Any]:
    return {
        "providers": {"fake": {"type": "openai", "base_url": up.openai_base_url}},
        "models": {"fake/a": {"deployment": "fake", "input_per_m": 1, "output_per_m": 2},
                   "fake/slow": {"deployment": "fake", "upstream_name": "slow-up",
                                 "input_per_m": 1, "output_per_m": 2}},
        "tiers": {"simple": {"model": "fake/a"}, "medium": {"model": "fake/a"},
                  "complex": {"model": "fake/a"}},
        "policies": {"default": {"router": "rules", "default_tier": "simple"}},
        "ledger": {"enabled": False},
        "keys": keys,
        "server": server,
    }


def start(path: Path, port: int, host: str = "127.0.0.1") -> tuple[subprocess.Popen[bytes], Path]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMROUTE")}
    log = path.with_suffix(".log")
    proc = subprocess.Popen([sys.executable, "-m", "llmroute", "serve", "-c", str(path),
                             "--host", host, "--port", str(port)],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    return proc, log


def wait_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"gateway did not start: {log.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    assert proc.wait(timeout=30) in (0, -signal.SIGTERM)


def models_status(url: str, key: str) -> int:
    return httpx.get(url + "/v1/models", headers={"authorization": f"Bearer {key}"},
                     timeout=5).status_code


def until(check: Any, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_sighup_rotates_keys_without_a_restart(up: FakeUpstream, tmp_path: Path) -> None:
    path, port = tmp_path / "llmroute.yaml", free_port()
    metrics_port = free_port()
    path.write_text(yaml.safe_dump(config(up, [{"name": "app", "hash": hash_key(OLD)}],
                                          metrics={"port": metrics_port})))
    proc, log = start(path, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_up(url, proc, log)
        assert (models_status(url, OLD), models_status(url, NEW)) == (200, 401)
        # /metrics has its own listener (no key there), and none on the main port
        assert httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).status_code == 200
        assert httpx.get(url + "/metrics", timeout=5).status_code == 404

        # a request in flight with the old key when the keys change
        in_flight: dict[str, httpx.Response] = {}

        def slow() -> None:
            in_flight["answer"] = httpx.post(
                url + "/v1/chat/completions", timeout=20,
                json={"model": "fake/slow", "messages": [{"role": "user", "content": "hi"}]},
                headers={"authorization": f"Bearer {OLD}"})

        thread = threading.Thread(target=slow)
        thread.start()
        time.sleep(0.5)
        path.write_text(yaml.safe_dump(config(up, [{"name": "app", "hash": hash_key(NEW)}],
                                              metrics={"port": metrics_port})))
        proc.send_signal(signal.SIGHUP)
        assert until(lambda: models_status(url, OLD) == 401), log.read_text()
        assert models_status(url, NEW) == 200
        thread.join(20)
        assert in_flight["answer"].status_code == 200, in_flight["answer"].text

        # an invalid config: the keys stay as they are, and the log says why
        path.write_text("keys: [{name: broken, hash: 'sha256:not-hex'}]\n")
        proc.send_signal(signal.SIGHUP)
        assert until(lambda: "kept the old gateway keys" in log.read_text()), log.read_text()
        assert (models_status(url, OLD), models_status(url, NEW)) == (401, 200)
        assert proc.poll() is None
    finally:
        stop(proc)
    text = log.read_text()
    assert OLD not in text and NEW not in text and hash_key(NEW) not in text


@pytest.mark.parametrize("allow", [False, True])
def test_an_open_gateway_stays_on_loopback(up: FakeUpstream, tmp_path: Path, allow: bool) -> None:
    path, port = tmp_path / "llmroute.yaml", free_port()
    path.write_text(yaml.safe_dump(config(up, [], **({"allow_open": True} if allow else {}))))
    proc, log = start(path, port, host="0.0.0.0")
    if not allow:
        assert proc.wait(timeout=30) != 0
        text = log.read_text()
        assert "no gateway keys are configured" in text and "server.allow_open" in text, text
        return
    try:
        wait_up(f"http://127.0.0.1:{port}", proc, log)
    finally:
        stop(proc)


def test_loopback_addresses() -> None:
    from llmroute.cli.serve_cmd import loopback

    assert all(loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "localhost"))
    assert not any(loopback(h) for h in ("0.0.0.0", "::", "10.0.0.5", "gateway.internal"))


def test_workers_share_metrics_listener_and_sessions(up: FakeUpstream, tmp_path: Path) -> None:
    # `--workers 2`: the metrics listener (in the supervisor) adds up both workers' counters, and
    # a dashboard session issued by one worker is accepted by the other (one secret for all)
    path, port, metrics_port = tmp_path / "llmroute.yaml", free_port(), free_port()
    settings = config(up, [{"name": "ops", "hash": hash_key(OLD), "role": "admin"}],
                      metrics={"port": metrics_port})
    settings["ledger"] = {"url": f"sqlite:///{tmp_path / 'ledger.db'}", "flush_interval_s": 0.05,
                          "spool_path": str(tmp_path / "spool.jsonl")}
    path.write_text(yaml.safe_dump(settings))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMROUTE")}
    log = tmp_path / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "llmroute", "serve", "-c", str(path), "--host",
                             "127.0.0.1", "--port", str(port), "--workers", "2"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_up(url, proc, log)
        auth = {"authorization": f"Bearer {OLD}"}
        with httpx.Client(base_url=url, timeout=10) as http:
            for i in range(20):
                body = {"model": "fake/a", "messages": [{"role": "user", "content": f"hi {i}"}]}
                assert http.post("/v1/chat/completions", json=body, headers=auth).status_code == 200
            login = http.post("/dashboard/login", data={"key": OLD}, headers={"origin": url})
            cookie = {"cookie": f"llmroute_session={login.cookies['llmroute_session']}"}
            # fresh connections land on either worker
            answers = [httpx.get(url + "/dashboard/data", headers=cookie, timeout=10).status_code
                       for _ in range(8)]
        assert answers == [200] * 8
        scrape = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        found = re.findall(r'^llmroute_requests_total\{[^}]*status="ok"[^}]*\} (\S+)$', scrape, re.M)
        assert sum(float(v) for v in found) == 20.0, scrape
    finally:
        stop(proc)
    # two workers, and the metrics listener in the supervisor
    assert len(set(re.findall(r"Started server process \[(\d+)\]", log.read_text()))) == 3
