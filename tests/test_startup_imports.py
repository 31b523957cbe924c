"""What a serving process imports at startup (issue 6's idle RSS): aiohttp (~12 MiB of RSS with
its C extensions) is only for alert webhooks, so it is imported when the first alert is posted."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

CONFIG = """\
providers:
  up: {type: openai, base_url: "http://127.0.0.1:9/v1", api_key_env: STARTUP_UP_KEY}
models:
  up/small: {deployment: up, input_per_m: 0.15, output_per_m: 0.6, context_window: 128000}
tiers:
  simple: {model: up/small}
  medium: {model: up/small}
  complex: {model: up/small}
alerts:
  webhooks: [{url: "http://127.0.0.1:9/hook"}]
ledger:
  url: sqlite:///{db}
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMROUTE")}
    env["STARTUP_UP_KEY"] = "k"
    return env


def test_the_app_starts_without_aiohttp(tmp_path: Path) -> None:
    config = tmp_path / "llmroute.yaml"
    config.write_text(CONFIG.replace("{db}", str(tmp_path / "ledger.db")))
    code = textwrap.dedent(f"""
        import sys
        from llmroute.config import load
        from llmroute.server.app import create_app
        create_app(load({str(config)!r}))
        import llmroute.control.alert_delivery
        print(sorted(m for m in sys.modules if m.split(".")[0] == "aiohttp"))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=_env(), check=False,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_the_ledger_reader_process_imports_only_its_frames_before_the_url() -> None:
    """The reader process (`python -m llmroute.ledger.reader_process`, started with the server)
    imports the store after its first frame, the ledger URL (a SQLite ledger: without TLS): not
    asyncio, not the ledger's writer, before it."""
    code = textwrap.dedent("""
        import sys
        import llmroute.ledger.reader_process
        print(sorted(m for m in sys.modules if m.split(".")[0] == "llmroute"))
        print(sorted(m for m in ("asyncio", "ssl", "sqlite3", "numpy", "pydantic") if m in sys.modules))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=_env(), check=False, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    ours, heavy = done.stdout.strip().splitlines()
    assert ours == str(["llmroute", "llmroute.lazy", "llmroute.ledger", "llmroute.ledger.frames",
                        "llmroute.ledger.reader_process"])
    assert heavy == "[]"
