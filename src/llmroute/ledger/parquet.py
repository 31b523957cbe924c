"""The ledger as Parquet, through pyarrow (the `export` extra): one explicit schema, one row group per
batch written.

Columns are the `LedgerEntry` fields, named as the entry names them (`user`, `session`), typed:

- `ts`, `feedback_ts`: timestamp[us, UTC];
- money (`cost_usd`, `baseline_cost_usd`, `routing_cost_usd`, `prompt_cache_saved_usd`,
  `cache_saved_usd`): decimal128(38, 28), exact: 10 integer digits (a request
  costs under $10^10) and 28 decimals. Not (38, 18): a cost is its tokens times a per-token price,
  and the bundled price snapshot has prices with up to 23 decimals (e.g. 3.0001999999999996e-07
  USD), so 18 would round real costs. A value the type cannot hold exactly (more decimals, or 10^10
  and over: hand-written, never computed) stops the export with an error naming the request; the
  `text` money type writes the exact decimal strings instead;
- `attempts` (an array of objects) and `shadow` (an array): JSON text, as the store keeps them;
- counts int64 (`http_status` int32, `user_rating` int16), latencies and `confidence` float64, flags
  bool, the rest strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any, BinaryIO

import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

from .entry import MONEY_FIELDS, TIME_FIELDS, LedgerEntry, money_text
from .export import ExportError
from .rows import FIELDS, attempts_json

MONEY_DECIMAL = pa.decimal128(38, 28)
UTC_TIME = pa.timestamp("us", tz="UTC")
TEXT_FIELDS = frozenset({"prompt_text", "response_text"})
#: Columns that are never null.
REQUIRED = frozenset({"request_id", "ts", "status", "http_status", "attempts", "stream", "latency_s",
                      "usage_estimated", "explored"})
_TYPES: MappingProxyType[str, Any] = MappingProxyType({
    "http_status": pa.int32(), "confidence": pa.float64(), "stream": pa.bool_(),
    "latency_s": pa.float64(), "ttft_s": pa.float64(), "upstream_latency_s": pa.float64(),
    "input_tokens": pa.int64(), "output_tokens": pa.int64(), "cached_tokens": pa.int64(),
    "usage_estimated": pa.bool_(), "user_rating": pa.int16(), "task_success": pa.bool_(),
    "explored": pa.bool_(), "cache_write_tokens": pa.int64(), "cache_similarity": pa.float64(),
})


def ledger_schema(money: str = "decimal") -> pa.Schema:
    """The export's schema; `money` "decimal" (decimal128(38, 28)) or "text" (exact strings)."""
    money_type = MONEY_DECIMAL if money == "decimal" else pa.string()

    def arrow_type(name: str) -> Any:
        if name in TIME_FIELDS:
            return UTC_TIME
        return money_type if name in MONEY_FIELDS else _TYPES.get(name, pa.string())

    return pa.schema([pa.field(name, arrow_type(name), nullable=name not in REQUIRED)
                      for name in FIELDS])


def _values(name: str, entries: Sequence[LedgerEntry], money: str, text: bool) -> list[Any]:
    """One column's Python values, ready for pyarrow."""
    if name == "attempts":
        return [attempts_json(e.attempts) for e in entries]
    if name in TEXT_FIELDS and not text:
        return [None] * len(entries)
    values = [getattr(e, name) for e in entries]
    if name in MONEY_FIELDS and money == "text":
        return [None if v is None else money_text(v) for v in values]
    return values


def _misfit(entries: Sequence[LedgerEntry], name: str) -> ExportError:
    """The error naming the first money value of column `name` that decimal128(38, 28) refuses."""
    for entry in entries:
        value = getattr(entry, name)
        try:
            pa.scalar(value, MONEY_DECIMAL)
        except (pa.ArrowInvalid, OverflowError):
            return ExportError(f"{name} of request {entry.request_id} is {value}: decimal128(38, 28) "
                               "cannot hold it exactly; export it with --money text (exact strings) "
                               "or --format jsonl")
    return ExportError(f"{name}: pyarrow refused a value of this batch")


def record_batch(entries: Sequence[LedgerEntry], schema: pa.Schema, *, money: str = "decimal",
                 text: bool = True) -> pa.RecordBatch:
    """`entries` as one Arrow record batch of `schema` (from `ledger_schema(money)`)."""
    arrays = []
    for field in schema:
        try:
            arrays.append(pa.array(_values(field.name, entries, money, text), type=field.type))
        except (pa.ArrowInvalid, OverflowError) as exc:
            if field.name in MONEY_FIELDS and money == "decimal":
                raise _misfit(entries, field.name) from exc
            raise
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


class ParquetWriter:
    """Batches of entries to a Parquet file (a `BatchWriter`): one row group per batch."""

    def __init__(self, sink: BinaryIO, *, text: bool = True, money: str = "decimal") -> None:
        self._schema = ledger_schema(money)
        self._money = money
        self._text = text
        self._writer = pq.ParquetWriter(sink, self._schema)

    def write(self, batch: Sequence[LedgerEntry]) -> None:
        if batch:
            arrow = record_batch(batch, self._schema, money=self._money, text=self._text)
            self._writer.write_batch(arrow, row_group_size=len(batch))

    def close(self) -> None:
        self._writer.close()
