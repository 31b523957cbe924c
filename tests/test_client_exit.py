"""A sync `llmroute.Client` that is never closed closes itself: a script that makes a call (or leaves a
stream half read) and exits without `close()` prints no unclosed session or ResourceWarning, and its
request still reaches the ledger. Each case is a real interpreter, against the fake upstream run as
its own process (`python -m llmroute.testing`)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

LEAKS = ("Traceback", "Unclosed", "unclosed", "ResourceWarning", "Exception ignored")
HEADER = """import llmroute
M = [{"role": "user", "content": "hi"}]
"""
SCRIPTS = {
    # the README's one-liner: the client is garbage as soon as the call returns
    "inline": 'print(llmroute.Client().chat.completions.create(model="auto", messages=M).model)',
    # still referenced when the interpreter exits
    "alive": """client = llmroute.Client()
print(client.chat.completions.create(model="auto", messages=M).model)""",
    # a stream read halfway, client and stream still referenced at exit
    "stream": """client = llmroute.Client()
stream = client.chat.completions.create(model="auto", messages=M, stream=True)
print(next(stream).model)""",
}


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-m", "llmroute.testing", "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()  # its base URL, once it listens
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def write_config(directory: Path, upstream: str) -> None:
    """./llmroute.yaml (what `llmroute.Client()` loads): the fake upstream, a SQLite ledger."""
    config = {
        "providers": {"fake": {"type": "openai", "base_url": upstream + "/v1"}},
        "models": {"fake/a": {"deployment": "fake", "input_per_m": 1, "output_per_m": 2}},
        "tiers": {tier: {"model": "fake/a"} for tier in ("simple", "medium", "complex")},
        "policies": {"default": {"router": "rules", "default_tier": "simple"}},
        "ledger": {"url": f"sqlite:///{directory / 'ledger.db'}",
                   "spool_path": str(directory / "spool.jsonl")},
    }
    (directory / "llmroute.yaml").write_text(yaml.safe_dump(config))


def ledger_rows(directory: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(directory / "ledger.db") as db:
        return db.execute("SELECT model, status FROM llmroute_requests").fetchall()


@pytest.mark.parametrize("case", sorted(SCRIPTS))
def test_unclosed_client_closes_at_exit(case: str, upstream: str, tmp_path: Path) -> None:
    write_config(tmp_path, upstream)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMROUTE")}
    env["PYTHONWARNINGS"] = "default::ResourceWarning"  # shown, as `python -X dev` would
    done = subprocess.run([sys.executable, "-c", HEADER + SCRIPTS[case]], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "fake/a"
    leaked = [word for word in LEAKS if word in done.stderr]
    assert not leaked, done.stderr
    rows = ledger_rows(tmp_path)  # written at exit: the close flushed the ledger
    assert len(rows) == 1 and rows[0][0] == "fake/a", rows
