"""`llmroute export` run as a user runs it, over a temporary SQLite ledger: JSON Lines and Parquet, to
a file or stdout, its errors, and a 100,000-entry export whose memory does not grow with the window."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from test_cli import run
from test_report_cli import WINDOW, entries, ledger

from llmroute.ledger import LedgerEntry, SQLiteStore
from llmroute.ledger.rows import SQLITE, sqlite_time, to_row
from llmroute.ledger.sqlite import _INSERT


def stored() -> list[LedgerEntry]:
    """The report tests' entries and three with text on one timestamp, in the ledger's order."""
    tied = [LedgerEntry(request_id=f"t{i}", ts=datetime(2025, 1, 2, tzinfo=UTC), status="ok",
                        http_status=200, cost_usd=Decimal("0.00000001875"), prompt_text="héllo ☃",
                        response_text="4") for i in range(3)]
    return sorted([*entries(), *tied], key=lambda e: (e.ts, e.request_id))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return ledger(tmp_path, stored())


def test_jsonl_to_a_file_and_to_stdout(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "ledger.jsonl"
    result = run("export", "-c", str(config), *WINDOW, "-o", str(out), "--batch-size", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"8 entries from 2025-01-01 00:00 to 2025-01-03 00:00 UTC → {out}" in result.stderr
    lines = out.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and [LedgerEntry.from_json(line) for line in lines[:-1]] == stored()
    piped = run("export", "-c", str(config), "--since", "2025-01-02", "--until", "2025-01-02T00:45",
                "--no-text", cwd=tmp_path)
    assert piped.returncode == 0, piped.stderr
    found = [LedgerEntry.from_json(line) for line in piped.stdout.splitlines()]
    assert [e.request_id for e in found] == ["t0", "t1", "t2", "r3"]
    assert all(e.prompt_text is None and e.response_text is None for e in found)
    assert piped.stderr == ""  # stdout is the data; nothing else said


def test_parquet_to_a_file(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "ledger.parquet"
    result = run("export", "-c", str(config), *WINDOW, "--format", "parquet", "-o", str(out),
                 "--batch-size", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    file = pq.ParquetFile(out)
    assert (file.metadata.num_rows, file.metadata.num_row_groups) == (8, 3)
    table = file.read()
    assert table.column("request_id").to_pylist() == [e.request_id for e in stored()]
    assert sum(v for v in table.column("cost_usd").to_pylist() if v is not None) == Decimal(
        "4500.00000005625")
    assert list(tmp_path.glob("*.partial")) == []


def test_errors_are_clear(config: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    missing.write_text("ledger: {url: 'sqlite:///nowhere.db'}\n")
    cases = [
        (("-c", str(missing)), "no ledger at nowhere.db"),
        (("-c", str(config), "--format", "csv"), "unknown format 'csv': use jsonl or parquet"),
        (("-c", str(config), "--money", "float"), "unknown money type 'float'"),
        (("-c", str(config), "--since", "yesterday"), "cannot read 'yesterday' as a time"),
        (("-c", str(config), "-o", str(tmp_path / "no" / "x.jsonl")), "cannot write"),
    ]
    for args, message in cases:
        result = run("export", *args, cwd=tmp_path)
        assert result.returncode == 1, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "nowhere.db").exists()


def test_parquet_without_pyarrow_names_the_extra(config: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "blocker" / "pyarrow"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError(\"No module named 'pyarrow'\")\n")
    out = tmp_path / "x.parquet"
    result = run("export", "-c", str(config), "-f", "parquet", "-o", str(out), cwd=tmp_path,
                 env={"PYTHONPATH": str(blocker.parent)})
    assert result.returncode == 1
    assert "Parquet export needs pyarrow" in result.stderr
    assert "pip install 'llmroute[export]'" in result.stderr and not out.exists()


# -- memory: 20,000 against 100,000 entries, the whole process (Arrow's buffers included) ----------
_MAX_RSS = ("import resource, sys\nfrom llmroute.cli.main import app\ntry:\n    app()\n"
            "finally:\n    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n")
BASE = datetime(2025, 1, 1, tzinfo=UTC)


def big_ledger(tmp_path: Path, n: int) -> Path:
    """A config whose SQLite ledger holds n small entries, one per millisecond from BASE."""
    db = tmp_path / "big.db"

    async def fill() -> None:
        store = SQLiteStore(db)
        await store.migrate()
        template = to_row(LedgerEntry(request_id="x", ts=BASE, status="ok", http_status=200,
                                      model="m/a", cost_usd=Decimal("0.0000225")), SQLITE)
        rows = [(f"req-{i:07d}", sqlite_time(BASE + timedelta(milliseconds=i)), *template[2:])
                for i in range(n)]
        await store.run(lambda conn: conn.executemany(_INSERT, rows))
        await store.close()

    asyncio.run(fill())
    config = tmp_path / "big.yaml"
    config.write_text(f"ledger: {{url: 'sqlite:///{db}'}}\n")
    return config


def max_rss_kb(config: Path, rows: int, out: Path) -> int:
    until = (BASE + timedelta(milliseconds=rows)).isoformat()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMROUTE")}
    result = subprocess.run([sys.executable, "-c", _MAX_RSS, "export", "-c", str(config), "--since",
                             BASE.isoformat(), "--until", until, "-f", "parquet", "-o", str(out)],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert pq.ParquetFile(out).metadata.num_rows == rows
    return int(result.stderr.strip().splitlines()[-1])


def test_a_large_export_runs_in_constant_memory(tmp_path: Path) -> None:
    config = big_ledger(tmp_path, 100_000)
    small = max_rss_kb(config, 20_000, tmp_path / "small.parquet")
    large = max_rss_kb(config, 100_000, tmp_path / "large.parquet")
    # the 80,000 more entries as objects would be ~150 MB more; batches of 5,000 add nothing
    assert large - small < 24_000, (small, large)
