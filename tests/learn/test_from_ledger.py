"""Logged traffic as a calibration table: estimates everywhere, observations where they exist."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import numpy as np

from llmroute.learn.from_ledger import logged_traffic
from llmroute.learn.model import RouterModel
from llmroute.ledger.entry import LedgerEntry

NOW = datetime(2026, 11, 28, tzinfo=UTC)


def entry(i: int, model: str | None, text: str | None, **extra: object) -> LedgerEntry:
    return LedgerEntry(request_id=f"req_{i}", ts=NOW, status=str(extra.pop("status", "ok")),
                       http_status=200, model=model, prompt_text=text, **extra)  # type: ignore[arg-type]


def test_observed_cells_replace_the_estimates_and_unusable_entries_are_left_out(
        handmade: RouterModel) -> None:
    entries = [
        entry(0, "m1", "user: what is 2 + 2?", task_success=True, cost_usd=Decimal("0.5")),
        entry(1, "c1", "system: terse\nuser: prove it", user_rating=2),
        entry(2, "s1", "user: no feedback", cost_usd=Decimal("0.25")),
        entry(3, "elsewhere", "user: a model outside the pool", task_success=False),
        entry(4, "m1", None, task_success=True),                      # no stored text
        entry(5, "m1", "user: failed", status="error", task_success=True),
    ]
    names = ("s1", "m1", "c1")
    logged = logged_traffic(entries, handmade, names)
    assert logged.texts == ("what is 2 + 2?", "prove it", "no feedback", "a model outside the pool")
    p, est = handmade.predict_many(logged.texts, names)
    expected_q, expected_c = p.copy(), est.copy()
    expected_q[0, 1], expected_c[0, 1] = 1.0, 0.5       # m1 answered request 0 well, for $0.50
    expected_q[1, 2] = 0.25                              # rating 2 → (2 − 1) / 4
    expected_c[2, 0] = 0.25                              # a logged cost without feedback
    np.testing.assert_allclose(logged.quality, expected_q)
    np.testing.assert_allclose(logged.cost, expected_c)
    assert logged.observed == 2 and logged.models == names


def test_no_usable_entry_is_an_empty_table(handmade: RouterModel) -> None:
    logged = logged_traffic([entry(0, "m1", None)], handmade, ("s1", "m1"))
    assert logged.texts == () and logged.quality.shape == (0, 2) and logged.observed == 0
