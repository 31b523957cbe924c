"""One gateway-like ledger entry: what the bench gateway's cascade writes for a short prompt (shared
by `writer_instructions.py` and `sqlite_write_cpu.py`; llmroute is imported on call, so a child
process measures the source tree first on its PYTHONPATH)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmroute.ledger import LedgerEntry


def gateway_entry(ts: datetime | None = None, request_id: str | None = None) -> LedgerEntry:
    """A fresh entry (`request_id`, default a new uuid4's hex; `ts`, default now)."""
    from datetime import UTC
    from decimal import Decimal

    from llmroute.ledger import AttemptRecord, LedgerEntry

    return LedgerEntry(
        request_id=request_id or uuid.uuid4().hex, ts=ts or datetime.now(UTC), status="ok", http_status=200,
        key_name="bench", policy="default", router="cascade", tier="simple", confidence=0.83,
        reason="classifier: simple (p=0.83)", model="bench/small",
        attempts=(AttemptRecord("bench/small", None, latency_s=0.0012),), latency_s=0.0021,
        upstream_latency_s=0.0012, input_tokens=12, output_tokens=9,
        cost_usd=Decimal("0.0000042"), baseline_cost_usd=Decimal("0.000031"),
        baseline_model="bench/large", latent="A" * 92)
