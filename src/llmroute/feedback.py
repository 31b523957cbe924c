"""Feedback from Python: attach a rating, task success or comment to a logged request (the same
effect as `POST /v1/feedback` and `llmroute feedback`)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

from .config import load
from .ledger import open_store
from .settings import Settings


def _check(rating: int | None, success: bool | None, comment: str | None) -> None:
    if rating is not None and (isinstance(rating, bool) or not 1 <= rating <= 5):
        raise ValueError("rating must be an integer from 1 to 5")
    if rating is None and success is None and comment is None:
        raise ValueError("give at least one of rating, success or comment")


async def send_feedback(request_id: str, *, rating: int | None = None, success: bool | None = None,
                        comment: str | None = None, config: str | Path | Settings | None = None,
                        environ: Mapping[str, str] | None = None) -> bool:
    """Record feedback in the configured ledger; False when the request id is unknown."""
    _check(rating, success, comment)
    settings = config if isinstance(config, Settings) else load(config, environ=environ)
    store = open_store(settings.ledger.url)
    try:
        return await store.feedback(request_id, rating, success, comment)
    finally:
        await store.close()


def feedback(request_id: str, *, rating: int | None = None, success: bool | None = None,
             comment: str | None = None, config: str | Path | Settings | None = None,
             environ: Mapping[str, str] | None = None) -> bool:
    """Blocking form of `send_feedback`, for scripts."""
    return asyncio.run(send_feedback(request_id, rating=rating, success=success, comment=comment,
                                     config=config, environ=environ))
