"""Exporting the ledger (`ledger.export`, `ledger.parquet`) on SQLite and PostgreSQL: JSON Lines round
trips, Parquet's schema and exact money, one row group per batch, errors, and memory that does not
grow with the number of entries exported."""

from __future__ import annotations

import io
import json
import random
import sys
import tracemalloc
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from ledger_factories import BASE_TS, full_entry, make_entry

from llmroute.ledger import AttemptRecord, LedgerEntry, SQLiteStore, Store
from llmroute.ledger.aggregates import EXACT
from llmroute.ledger.export import (
    ExportError,
    ExportOptions,
    JsonlWriter,
    atomic_file,
    export,
    writer_for,
)
from llmroute.ledger.parquet import MONEY_DECIMAL, ParquetWriter, ledger_schema
from llmroute.ledger.rows import FIELDS, SQLITE, sqlite_time, to_row
from llmroute.ledger.sqlite import _INSERT


def ledger(seed: int, n: int) -> list[LedgerEntry]:
    """Entries with costs of up to 23 decimals (what the bundled prices give), ties on ts, text."""
    rng = random.Random(seed)
    rows = [full_entry(n + 1)]
    for i in range(n):
        cost = Decimal(f"{rng.randrange(10 ** rng.randint(1, 15))}E-{rng.randint(6, 23)}")
        rows.append(make_entry(i, ts=BASE_TS + timedelta(seconds=rng.randrange(0, 50)),
                               cost_usd=rng.choice([None, cost, Decimal("0.00000001875")]),
                               baseline_cost_usd=rng.choice([None, cost * 3]),
                               prompt_text=rng.choice([None, "hi ☃", ""]), response_text="ok\n"))
    return rows


async def exported(store: Store, options: ExportOptions, batch_size: int = 7) -> bytes:
    sink = io.BytesIO()
    count = await export(store.iterate(batch_size=batch_size), writer_for(options)(sink))
    assert count == await store.count()
    return sink.getvalue()


def money_sum(values: Sequence[Decimal | None]) -> Decimal:
    with localcontext(EXACT):
        return sum((v for v in values if v is not None), Decimal(0))


def entry_from_row(row: dict[str, Any]) -> LedgerEntry:
    """The entry a Parquet row holds (attempts from their JSON text)."""
    attempts = tuple(AttemptRecord.from_dict(a) for a in json.loads(row["attempts"]))
    return LedgerEntry(**{**row, "attempts": attempts})


# -- JSON Lines ----------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_jsonl_round_trips(store: Store) -> None:
    rows = ledger(1, 60)
    await store.write(rows)
    text = (await exported(store, ExportOptions("jsonl"))).decode("utf-8")
    assert text.endswith("\n") and "\u2028" in text  # lines end at \n only, as JSON Lines says
    lines = text.split("\n")[:-1]
    assert [LedgerEntry.from_json(line) for line in lines] == await store.query()
    bare = (await exported(store, ExportOptions("jsonl", text=False))).decode("utf-8").split("\n")[:-1]
    found = [LedgerEntry.from_json(line) for line in bare]
    assert all(e.prompt_text is None and e.response_text is None for e in found)
    assert [e.request_id for e in found] == [e.request_id for e in await store.query()]


# -- Parquet -------------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_parquet_holds_every_entry_with_exact_money(store: Store) -> None:
    rows = ledger(2, 80)
    await store.write(rows)
    data = await exported(store, ExportOptions("parquet"), batch_size=16)
    file = pq.ParquetFile(io.BytesIO(data))
    assert file.metadata.num_rows == len(rows)
    assert file.metadata.num_row_groups == -(-len(rows) // 16)  # one per batch
    table = file.read()
    assert table.schema == ledger_schema()
    assert table.schema.names == list(FIELDS)  # every field of the entry, named as the entry does
    assert [entry_from_row(r) for r in table.to_pylist()] == await store.query()
    expected = money_sum([e.cost_usd for e in rows])
    assert money_sum(table.column("cost_usd").to_pylist()) == expected
    assert pc.sum(table.column("cost_usd")).as_py() == expected  # as an analyst's sum finds it
    assert money_sum(table.column("baseline_cost_usd").to_pylist()) == money_sum(
        [e.baseline_cost_usd for e in rows])
    assert table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    # caching's columns (0008), typed: the full entry holds each of them
    types = {name: table.schema.field(name).type for name in (
        "cache", "cache_write_tokens", "prompt_cache_saved_usd", "cache_saved_usd", "cached_from",
        "cache_similarity")}
    assert types == {"cache": pa.string(), "cache_write_tokens": pa.int64(),
                     "prompt_cache_saved_usd": MONEY_DECIMAL, "cache_saved_usd": MONEY_DECIMAL,
                     "cached_from": pa.string(), "cache_similarity": pa.float64()}
    assert [c for c in table.column("cache").to_pylist() if c] == ["semantic"]
    assert money_sum(table.column("prompt_cache_saved_usd").to_pylist()) == Decimal("-0.00000000075")


@pytest.mark.asyncio
async def test_parquet_money_as_text_and_no_text(store: Store) -> None:
    huge = make_entry(1, cost_usd=Decimal("12345678901234567890.0000000000000000000000000000001"))
    await store.write([huge, make_entry(2, prompt_text="secret", response_text="answer")])
    table = pq.read_table(io.BytesIO(await exported(store, ExportOptions("parquet", text=False,
                                                                          money="text"))))
    assert table.schema.field("cost_usd").type == pa.string()
    assert table.column("cost_usd").to_pylist() == [str(huge.cost_usd), "0.0000225"]
    assert table.column("prompt_text").to_pylist() == [None, None]
    assert table.column("response_text").to_pylist() == [None, None]


@pytest.mark.asyncio
async def test_money_decimal128_cannot_hold_is_a_clear_error(store: Store) -> None:
    await store.write([make_entry(1), make_entry(2, cost_usd=Decimal("1E-29"))])
    with pytest.raises(ExportError, match=r"cost_usd of request req-000002 is 1E-29: decimal128\(38, "
                                          r"28\) cannot hold it exactly; export it with --money text"):
        await exported(store, ExportOptions("parquet"))


def test_an_empty_parquet_export_is_a_valid_file() -> None:
    sink = io.BytesIO()
    writer = ParquetWriter(sink)
    writer.write([])
    writer.close()
    table = pq.read_table(io.BytesIO(sink.getvalue()))
    assert table.num_rows == 0 and table.schema == ledger_schema()


def test_options_and_a_missing_pyarrow(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ExportError, match="unknown format 'csv': use jsonl or parquet"):
        ExportOptions("csv")
    with pytest.raises(ExportError, match="unknown money type 'float'"):
        ExportOptions("parquet", money="float")
    monkeypatch.setitem(sys.modules, "llmroute.ledger.parquet", None)  # as if pyarrow were missing
    with pytest.raises(ExportError, match=r"Parquet export needs pyarrow .*pip install 'llmroute\[export\]'"):
        writer_for(ExportOptions("parquet"))
    assert writer_for(ExportOptions("jsonl")) is not None


def test_atomic_file_appears_only_when_complete(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    with pytest.raises(RuntimeError), atomic_file(path) as sink:
        sink.write(b"half")
        raise RuntimeError("store went away")
    assert list(tmp_path.iterdir()) == []
    with atomic_file(path) as sink:
        sink.write(b"whole\n")
        assert not path.exists()
    assert path.read_bytes() == b"whole\n" and list(tmp_path.iterdir()) == [path]


# -- memory --------------------------------------------------------------------------------------
async def fill(store: SQLiteStore, n: int) -> None:
    """n small entries, one per millisecond, inserted in one statement batch."""
    template = to_row(LedgerEntry(request_id="x", ts=BASE_TS, status="ok", http_status=200,
                                  model="m/a", cost_usd=Decimal("0.0000225")), SQLITE)
    rows = [(f"req-{i:07d}", sqlite_time(BASE_TS + timedelta(milliseconds=i)), *template[2:])
            for i in range(n)]
    await store.run(lambda conn: conn.executemany(_INSERT, rows))


async def peak_exporting(store: SQLiteStore, rows: int, path: Path) -> int:
    """Peak traced memory while exporting the first `rows` entries to a JSON Lines file."""
    tracemalloc.start()
    try:
        with atomic_file(path) as sink:
            batches = store.iterate(until=BASE_TS + timedelta(milliseconds=rows), batch_size=400)
            assert await export(batches, JsonlWriter(sink)) == rows
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.asyncio
async def test_export_memory_does_not_grow_with_the_window(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "big.db")
    try:
        await store.migrate()
        await fill(store, 20_000)
        small = await peak_exporting(store, 4_000, tmp_path / "small.jsonl")
        large = await peak_exporting(store, 20_000, tmp_path / "large.jsonl")
    finally:
        await store.close()
    # the whole window as entries would be ~2 KB each: 40 MB for 20,000; batches of 400 stay ~2 MB
    assert large < 1.5 * small, (small, large)
    assert large < 8_000_000, large
