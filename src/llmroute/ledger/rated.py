"""The learner's read of the ledger (learning online, issue 13): feedback on requests that kept a
prompt latent, in the order it was given, after a cursor. One indexed query per poll
(`llmroute_requests_learn`, migration 0006_online; since 0010_rated_index it holds only the rows
with feedback, so the query must keep `feedback_ts IS NOT NULL`), never a scan of the window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .entry import as_utc

#: Where a poll resumes: the last (feedback_ts, request_id) it read.
Cursor = tuple[datetime, str]


@dataclass(frozen=True)
class Rated:
    """One request's feedback, with what the learner needs: the model that answered, who asked
    (the rater), the prompt's latent and the feedback values."""

    request_id: str
    feedback_ts: datetime
    model: str | None
    key_name: str | None
    user: str | None
    user_rating: int | None
    task_success: bool | None
    latent: str

    @property
    def cursor(self) -> Cursor:
        return self.feedback_ts, self.request_id


_COLUMNS = ("request_id", "feedback_ts", "model", "key_name", "user_name", "user_rating",
            "task_success", "latent")


def rated_sql(placeholder: Callable[[int], str], after: bool, limit: int) -> str:
    """The poll's SQL: parameters (until) or (until, after_ts, after_id)."""
    p = placeholder
    sql = (f"SELECT {', '.join(_COLUMNS)} FROM llmroute_requests WHERE latent IS NOT NULL "
           f"AND feedback_ts IS NOT NULL AND feedback_ts < {p(1)}")
    if after:
        sql += f" AND (feedback_ts, request_id) > ({p(2)}, {p(3)})"
    return sql + f" ORDER BY feedback_ts, request_id LIMIT {int(limit)}"


def rated_params(until: datetime, after: Cursor | None,
                 time_out: Callable[[datetime], Any]) -> list[Any]:
    """The poll's parameters, times converted by the backend's `time_out`."""
    params: list[Any] = [time_out(as_utc(until, "until"))]
    if after is not None:
        params += [time_out(as_utc(after[0], "after")), after[1]]
    return params


def rated_of(row: Sequence[Any], time_in: Callable[[Any], datetime]) -> Rated:
    """A row of `rated_sql` as `Rated`."""
    success = row[6]
    return Rated(str(row[0]), time_in(row[1]), row[2], row[3], row[4],
                 None if row[5] is None else int(row[5]), None if success is None else bool(success),
                 str(row[7]))
