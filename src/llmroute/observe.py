"""The observation seam: what the gateway tells an observer (the OpenTelemetry tracer,
`telemetry/tracing.py`) about each finished request, from the same place it hands the ledger entry
to the recorder. The core never imports an observer's implementation: with none configured, the
gateway does no per-request work for it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .ledger.entry import LedgerEntry
from .resilience import Attempt


@dataclass(frozen=True)
class Finished:
    """One finished request (success, failure, a stream at its end, a cache hit): its ledger
    entry, its attempts with their start times (the LLM router's first), when it started and ended
    (`time.monotonic`), the request body and the answer's text (None unless an observer or the
    ledger asked for text)."""

    entry: LedgerEntry
    attempts: tuple[Attempt, ...]
    started: float
    ended: float
    body: Mapping[str, Any]
    response: str | None = None


class Observer(Protocol):
    """Told about every finished request; must not raise (the gateway logs it if it does)."""

    #: The observer wants the answer's text (the gateway then joins a stream's text for it).
    wants_text: bool

    def finished(self, done: Finished) -> None:
        """One request ended."""
        ...
