"""`llmroute alerts test` against a real local webhook server, and `llmroute alerts list` over a
SQLite ledger holding alerts, run as subprocesses exactly as a user runs them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from llmroute.control.alert_store import record_alert
from llmroute.control.alerts import Alert
from llmroute.ledger import SQLiteStore
from llmroute.settings import Settings

needs_alerts_section = pytest.mark.skipif(
    "alerts" not in Settings.model_fields,
    reason="Settings has no `alerts` section yet (AlertsConfig is not wired into settings.py)")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMROUTE")}
    env["ALERTS_CLI_TOKEN"] = "Bearer cli-secret"
    return subprocess.run([sys.executable, "-m", "llmroute", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=60)


@dataclass
class Hook:
    """A threaded local webhook: answers `statuses` in turn (then 200) and records the bodies."""

    statuses: list[int] = field(default_factory=list)
    bodies: list[tuple[str, dict[str, Any], str | None]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def hook() -> Iterator[Hook]:
    state = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status = state.statuses.pop(0) if state.statuses else 200
            if status == 200:
                state.bodies.append((self.path, body, self.headers.get("Authorization")))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def write_config(tmp_path: Path, alerts: str = "") -> Path:
    path = tmp_path / "llmroute.yaml"
    path.write_text(f"ledger:\n  url: sqlite:///{tmp_path / 'ledger.db'}\n{alerts}", encoding="utf-8")
    return path


@needs_alerts_section
def test_alerts_test_reaches_every_webhook(tmp_path: Path, hook: Hook) -> None:
    cfg = write_config(tmp_path, f"""alerts:
  retry: {{attempts: 3, backoff_s: 0}}
  webhooks:
    - {{url: "{hook.url}/generic/T0K3N", headers_env: {{Authorization: ALERTS_CLI_TOKEN}}}}
    - {{url: "{hook.url}/slack", format: slack}}
""")
    hook.statuses = [503]  # the first try of one webhook fails: it is retried
    result = run("alerts", "test", "-c", str(cfg), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ log" in result.stdout and f"✓ json webhook {hook.url}" in result.stdout
    assert f"slack webhook {hook.url}" in result.stdout and "T0K3N" not in result.stdout
    got = {path: (body, auth) for path, body, auth in hook.bodies}
    generic, auth = got["/generic/T0K3N"]
    assert auth == "Bearer cli-secret"
    assert (generic["rule"], generic["severity"]) == ("test", "info")
    assert "delivery works" in generic["message"]
    assert "delivery works" in got["/slack"][0]["text"] and got["/slack"][1] is None


@needs_alerts_section
def test_alerts_test_fails_clearly_when_a_webhook_refuses(tmp_path: Path, hook: Hook) -> None:
    cfg = write_config(tmp_path, f"""alerts:
  retry: {{attempts: 2, backoff_s: 0}}
  webhooks: [{{url: "{hook.url}/hooks/SECRET"}}]
""")
    hook.statuses = [500, 500]
    result = run("alerts", "test", "-c", str(cfg), cwd=tmp_path)
    assert result.returncode == 1
    assert f"✗ json webhook {hook.url}: HTTP 500 after 2 tries" in result.stdout
    assert "1 of 2 destination(s) did not take the test alert" in result.stderr
    assert "SECRET" not in result.stdout + result.stderr and "Traceback" not in result.stderr


def test_alerts_test_without_webhooks_goes_to_the_log(tmp_path: Path) -> None:
    result = run("alerts", "test", "-c", str(write_config(tmp_path)), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "✓ log" in result.stdout and "no webhooks configured" in result.stdout
    assert "alert [info] test (*): Test alert" in result.stderr  # the log line


def test_alerts_list_reads_the_history(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    now = datetime.now(UTC).replace(microsecond=0)
    alerts = [Alert("limits", "limit", "warning", "daily:k1", "limit 'daily' (key k1) at 80%",
                    {"share": 0.8}, now - timedelta(days=2), "a"),
              Alert("error-rate", "error_rate", "critical", "*", "error rate 31%", {"share": 0.31},
                    now - timedelta(minutes=5), "b"),
              Alert("old", "cooldown", "warning", "model:m", "ancient", {}, now - timedelta(days=30), "c")]

    async def fill() -> None:
        store = SQLiteStore(tmp_path / "ledger.db")
        await store.migrate()
        for alert, delivered in zip(alerts, (True, False, True), strict=True):
            await record_alert(store, alert, delivered)
        await store.close()

    asyncio.run(fill())
    listed = run("alerts", "list", "--json", "-c", str(cfg), cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["rule"], r["delivered"]) for r in rows] == [("error-rate", False), ("limits", True)]
    assert rows[0] == {**alerts[1].to_dict(), "delivered": False}
    recent = run("alerts", "list", "--since", "1h", "-c", str(cfg), cwd=tmp_path)
    assert "error rate 31%" in recent.stdout and "daily" not in recent.stdout
    assert "NO" in recent.stdout  # not delivered
    empty = run("alerts", "list", "--since", "2025-01-01", "--until", "2025-01-02", "-c", str(cfg),
                cwd=tmp_path)
    assert empty.returncode == 0 and "no alerts since 2025-01-01" in empty.stdout
