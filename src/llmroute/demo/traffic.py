"""Send the recorded prompts through the gateway with the official `openai` SDK (bounded concurrency,
a rich progress bar) and post each answer's recorded outcome back as feedback."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..providers.replay import ReplayBook

REQUEST_ID_HEADER = "x-llmroute-request-id"


@dataclass(frozen=True)
class Sent:
    """One prompt's trip: the gateway's request id, the model that answered and its recorded outcome
    and cost (None when the request failed; `error` then says why)."""

    record_id: str
    prompt: str
    request_id: str | None
    model: str | None
    outcome: float | None
    recorded_cost_usd: float | None
    error: str | None = None
    #: What a limit did to the request (`x-llmroute-limit-action`: downgraded), if anything.
    limit_action: str | None = None
    #: The failure's kind: `HTTP <status> <error code or type>`, or the exception's name.
    error_kind: str | None = None


#: What a replay failure means, found in the error's message (the replay injects no failures).
NOT_RECORDED = ("was recorded for this prompt", "no recorded answer: RouterBench lacks the answers "
                "of the models tried on this prompt")


def error_kind(exc: Exception) -> str:
    """E.g. `HTTP 502 all_upstreams_failed (attempts: not_found; no recorded answer: …)` for an
    error answer (its OpenAI-style `code`, else `type`, and its attempts' errors), the
    exception's class name for anything else (a dropped connection, a timeout)."""
    status = getattr(exc, "status_code", None)
    if status is None:
        return type(exc).__name__
    body = getattr(exc, "body", None)
    error = body.get("error", body) if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    kind = f"HTTP {status} {error.get('code') or error.get('type') or ''}".rstrip()
    attempts = error.get("attempts")
    notes = []
    if isinstance(attempts, list) and attempts:
        errors = sorted({str(a.get("error")) for a in attempts if isinstance(a, dict)})
        notes.append(f"attempts: {', '.join(errors)}")
    if NOT_RECORDED[0] in str(error.get("message", "")):
        notes.append(NOT_RECORDED[1])
    return f"{kind} ({'; '.join(notes)})" if notes else kind


def rating_of(outcome: float) -> int:
    """The 1–5 rating the demo posts for a recorded outcome in [0, 1]: 1 + 4 × outcome, rounded
    (a wrong answer 1, a right one 5), so the report's rating and $/quality point are filled."""
    return 1 + round(4 * min(1.0, max(0.0, outcome)))


@dataclass(frozen=True)
class Caller:
    """Who sends a prompt: the end user and the session (None: none given)."""

    user: str | None = None
    session: str | None = None


async def send_one(client: Any, http: httpx.AsyncClient, book: ReplayBook, record: dict[str, Any],
                   caller: Caller = Caller()) -> Sent:
    """One chat request with `model="auto"`, then its feedback (success = outcome ≥ 0.5, and
    `rating_of` the outcome)."""
    import openai

    prompt = str(record["prompt"])
    extra: dict[str, Any] = {}
    if caller.user:
        extra["user"] = caller.user
    if caller.session:
        extra["metadata"] = {"session_id": caller.session}
    try:
        raw = await client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": prompt}], extra_body=extra)
    except openai.APIError as exc:
        return Sent(str(record["id"]), prompt, None, None, None, None, error=str(exc),
                    error_kind=error_kind(exc))
    request_id = raw.headers.get(REQUEST_ID_HEADER)
    completion = raw.parse()
    found = book.find(prompt, completion.model)
    outcome = found.outcome if found else None
    if request_id and outcome is not None:
        reply = await http.post("/v1/feedback", json={"request_id": request_id,
                                                      "success": outcome >= 0.5,
                                                      "rating": rating_of(outcome)})
        reply.raise_for_status()
    return Sent(str(record["id"]), prompt, request_id, completion.model, outcome,
                found.cost_usd if found else None,
                limit_action=raw.headers.get("x-llmroute-limit-action"))


async def send_all(base_url: str, book: ReplayBook, records: Sequence[dict[str, Any]],
                   concurrency: int, console: Console,
                   callers: Sequence[Caller] | None = None) -> list[Sent]:
    """Every record once (record i sent by `callers[i]`, if given), at most `concurrency` in
    flight, with a progress bar."""
    import openai

    gate = asyncio.Semaphore(max(1, concurrency))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    columns = (TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    async with (openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key="demo", max_retries=0) as client,
                httpx.AsyncClient(base_url=base_url, limits=limits) as http):
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task("requests", total=len(records))

            async def bounded(record: dict[str, Any], caller: Caller) -> Sent:
                async with gate:
                    sent = await send_one(client, http, book, record, caller)
                progress.advance(task)
                return sent

            who = callers or [Caller()] * len(records)
            return list(await asyncio.gather(*(bounded(r, c) for r, c in zip(records, who,
                                                                              strict=True))))
