"""`llmroute serve` as a real process: no access log unless asked for, and `--workers N` runs N worker
processes that all serve and all write the one ledger."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from llmroute.testing.behaviours import Ok
from llmroute.testing.upstream import FakeUpstream

from .test_ledger_load import free_port


@pytest.fixture(scope="module")
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream(record=False) as upstream:
        upstream.set_default("*", Ok())
        yield upstream


def serve(up: FakeUpstream, tmp_path: Path, *args: str, sections: dict[str, Any] | None = None
          ) -> tuple[subprocess.Popen[bytes], str, Path]:
    """`llmroute serve` in a process over a one-model config (`sections` replace its own)."""
    port = free_port()
    config = {
        "providers": {"fake": {"type": "openai", "base_url": up.openai_base_url}},
        "models": {"fake/a": {"deployment": "fake", "input_per_m": 1, "output_per_m": 2}},
        "tiers": {"simple": {"model": "fake/a"}, "medium": {"model": "fake/a"},
                  "complex": {"model": "fake/a"}},
        "policies": {"default": {"router": "rules", "default_tier": "simple"}},
        "ledger": {"url": f"sqlite:///{tmp_path / 'ledger.db'}", "flush_interval_s": 0.05,
                   "spool_path": str(tmp_path / "spool.jsonl")},
        **(sections or {}),
    }
    path = tmp_path / "llmroute.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMROUTE")}
    log_path = tmp_path / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "llmroute", "serve", "-c", str(path),
                             "--host", "127.0.0.1", "--port", str(port), *args],
                            stdout=log_path.open("wb"), stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url, log_path
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"gateway did not start: {log_path.read_text()}")


def chat(url: str, count: int) -> set[str]:
    ids = set()
    with httpx.Client(base_url=url, timeout=10) as client:
        for i in range(count):
            body = {"model": "auto", "messages": [{"role": "user", "content": f"hi {i}"}]}
            response = client.post("/v1/chat/completions", json=body)
            assert response.status_code == 200, response.text
            ids.add(response.headers["x-llmroute-request-id"])
    return ids


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()  # uvicorn shuts down gracefully, then re-raises the signal it caught
    assert proc.wait(timeout=30) in (0, -signal.SIGTERM)


@pytest.mark.parametrize("flag", [None, "--access-log"])
def test_access_log_only_when_asked(up: FakeUpstream, tmp_path: Path, flag: str | None) -> None:
    proc, url, log_path = serve(up, tmp_path, *([flag] if flag else []))
    try:
        chat(url, 3)
    finally:
        stop(proc)
    lines = [line for line in log_path.read_text().splitlines() if "POST /v1/chat/completions" in line]
    assert len(lines) == (3 if flag else 0)


def test_workers_all_serve_and_share_the_ledger(up: FakeUpstream, tmp_path: Path) -> None:
    proc, url, log_path = serve(up, tmp_path, "--workers", "2")
    try:
        ids = chat(url, 40)
        # every scrape, whichever worker answers it, counts both workers' requests
        scrapes = [httpx.get(url + "/metrics", timeout=5).text for _ in range(6)]
    finally:
        stop(proc)
    for text in scrapes:
        found = re.findall(r'^llmroute_requests_total\{[^}]*status="ok"[^}]*\} (\S+)$', text, re.M)
        assert sum(float(v) for v in found) == 40.0, text
    started = set(re.findall(r"Started server process \[(\d+)\]", log_path.read_text()))
    assert len(started) == 2
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        logged = {row[0] for row in db.execute("SELECT request_id FROM llmroute_requests")}
    assert logged == ids


def test_serve_prints_the_dashboard_and_metrics_urls(up: FakeUpstream, tmp_path: Path) -> None:
    proc, url, log_path = serve(up, tmp_path)
    try:
        text = log_path.read_text()
        dashboard = re.search(r"dashboard on (\S+) \(open: no `keys:` configured\)", text)
        metrics = re.search(r"metrics on (\S+) \(no key\)", text)
        assert dashboard and metrics, text
        assert dashboard.group(1) == f"{url}/dashboard" and metrics.group(1) == f"{url}/metrics"
        page = httpx.get(dashboard.group(1), timeout=10)
        assert page.status_code == 200 and "<html" in page.text.lower()
        scrape = httpx.get(metrics.group(1), timeout=10)
        assert scrape.status_code == 200 and "# TYPE" in scrape.text
    finally:
        stop(proc)
