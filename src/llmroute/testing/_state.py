"""The fake upstream's shared state: per-model scripts and defaults (a `Chaos` drawn from the
seeded RNG per request), request records and counts, and the chaos faults drawn. Shared by the
server thread and the test, under one lock."""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from llmroute.testing._wire import JsonObject
from llmroute.testing.behaviours import Behaviour, Chaos, Ok, Protocol, Scripted


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it (`body` is None when it was not a JSON object)."""

    protocol: Protocol
    path: str
    model: str | None
    headers: dict[str, str]
    body: JsonObject | None
    timestamp: float


class State:
    """Scripts, defaults, records and counts; shared by the server thread and the test."""

    def __init__(self, record: bool, seed: int | None) -> None:
        self.record_bodies = record
        self._cond = threading.Condition()
        self._scripts: dict[str, deque[Scripted]] = {}
        self._defaults: dict[str, Scripted] = {}
        self._seed = seed
        self._rng = random.Random(seed)
        self._faults: dict[str, int] = {}
        self._records: list[RecordedRequest] = []
        self._counts: dict[str, int] = {}
        self._total = 0

    def record(self, request: RecordedRequest | None, model: str | None) -> None:
        with self._cond:
            self._total += 1
            if model is not None:
                self._counts[model] = self._counts.get(model, 0) + 1
            if request is not None:
                self._records.append(request)
            self._cond.notify_all()

    def next_behaviour(self, model: str) -> Behaviour:
        with self._cond:
            queue = self._scripts.get(model)
            if queue:
                scripted = queue.popleft()
            else:
                scripted = self._defaults.get(model) or self._defaults.get("*") or Ok()
            return self._draw(scripted) if isinstance(scripted, Chaos) else scripted

    def _draw(self, chaos: Chaos) -> Behaviour:
        """One request's fault under `chaos` (caller holds the lock), counted by name."""
        fault = chaos.fault(self._rng.random())
        name = fault or "ok"
        self._faults[name] = self._faults.get(name, 0) + 1
        return chaos.behaviour(fault)

    def faults(self) -> dict[str, int]:
        with self._cond:
            return dict(self._faults)

    def script(self, model: str, behaviours: Sequence[Scripted]) -> None:
        with self._cond:
            self._scripts.setdefault(model, deque()).extend(behaviours)

    def set_default(self, model: str, behaviour: Scripted | None) -> None:
        with self._cond:
            if behaviour is None:
                self._defaults.pop(model, None)
            else:
                self._defaults[model] = behaviour

    def reset(self) -> None:
        with self._cond:
            self._scripts.clear()
            self._defaults.clear()
            self._records.clear()
            self._counts.clear()
            self._total = 0
            self._faults.clear()
            self._rng = random.Random(self._seed)

    def records(self) -> list[RecordedRequest]:
        with self._cond:
            return list(self._records)

    def counts(self) -> tuple[dict[str, int], int]:
        with self._cond:
            return dict(self._counts), self._total

    def pending(self, model: str) -> int:
        with self._cond:
            return len(self._scripts.get(model, ()))

    def wait_total(self, count: int, timeout_s: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._total >= count, timeout_s)
