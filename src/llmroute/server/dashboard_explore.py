"""The dashboard's request explorer: `GET /dashboard/requests` (the latest requests of the window
that pass the filters, newest first, a page at a time) and `GET /dashboard/requests/{id}` (one
request: its routing decision, attempts, usage and cost, cache marks, feedback, and its text where
the ledger stores it). Authenticated as `/dashboard/data`; an application key only ever sees its own
requests (another key's id answers 404, as an unknown one does). The reads run in the ledger's
reader process (`ledger.explore`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import InvalidRequestError, NotFoundError
from ..ledger import StoreError
from ..ledger.entry import CACHE_STATES, STATUSES, LedgerEntry
from ..ledger.explore import Cursor, Filters, latest, one
from ..ledger.service import LedgerService
from .dashboard import Handler, ledger_disabled, unavailable, window_of
from .dashboard_login import DashboardAccess

#: Rows per page: the default and the most a page may ask for.
PAGE_ROWS, MAX_PAGE_ROWS = 50, 200
#: The list's fields of each request (the detail has them all).
ROW_FIELDS = ("request_id", "ts", "key_name", "model", "policy", "tier", "status", "http_status",
              "latency_s", "cost_usd", "cache", "user_rating", "task_success")
#: Fields never shown: the learning vector is internal.
HIDDEN = ("latent",)


def _choice(request: Request, name: str, allowed: frozenset[str] | None) -> str | None:
    value = request.query_params.get(name) or None
    if value is not None and allowed is not None and value not in allowed:
        raise InvalidRequestError(f"`{name}` must be one of {', '.join(sorted(allowed))}.",
                                  param=name)
    return value


def _limit(request: Request) -> int:
    text = request.query_params.get("limit", str(PAGE_ROWS))
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE_ROWS:
        raise InvalidRequestError(f"`limit` must be a whole number from 1 to {MAX_PAGE_ROWS}.",
                                  param="limit")
    return int(text)


def _cursor(request: Request) -> Cursor | None:
    """`?before=` (the previous page's `next`: "<ISO ts>~<request id>")."""
    text = request.query_params.get("before")
    if not text:
        return None
    ts, _, request_id = text.partition("~")
    try:
        when = datetime.fromisoformat(ts)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None or not request_id:
        raise InvalidRequestError("`before` must be a page's `next` cursor.", param="before")
    return when.astimezone(UTC), request_id


def detail_dict(entry: LedgerEntry) -> dict[str, Any]:
    """One request as the explorer shows it (`LedgerEntry.to_dict` without internal fields)."""
    body = entry.to_dict()
    for name in HIDDEN:
        body.pop(name, None)
    return body


def requests_list(access: DashboardAccess, ledger: LedgerService | None) -> Handler:
    """The `GET /dashboard/requests` handler."""
    from .app import JSONResponse

    async def handler(request: Request) -> Response:
        principal = await access.required(request)
        if ledger is None:
            raise ledger_disabled()
        now = datetime.now(UTC)
        start = window_of(request, now)
        own = None if principal.admin else principal.name or ""
        filters = Filters(_choice(request, "model", None), _choice(request, "policy", None),
                          _choice(request, "status", STATUSES),
                          own if own is not None else _choice(request, "key_name", None),
                          _choice(request, "cache", CACHE_STATES))
        limit, before = _limit(request), _cursor(request)
        try:
            page = await ledger.reads.call(latest, start, now, filters, limit, before)
        except StoreError as exc:
            raise unavailable(f"Cannot read the ledger: {exc}", "ledger_unavailable") from None
        rows = [{k: v for k, v in e.to_dict().items() if k in ROW_FIELDS} for e in page.entries]
        cursor = f"{page.next[0].isoformat()}~{page.next[1]}" if page.next else None
        return JSONResponse({"object": "list", "data": rows, "next": cursor},
                            headers={"cache-control": "no-store"})

    return handler


def request_detail(access: DashboardAccess, ledger: LedgerService | None) -> Handler:
    """The `GET /dashboard/requests/{request_id}` handler."""
    from .app import JSONResponse

    async def handler(request: Request) -> Response:
        principal = await access.required(request)
        if ledger is None:
            raise ledger_disabled()
        request_id = request.path_params["request_id"]
        try:
            entry = await ledger.reads.call(one, request_id,
                                            None if principal.admin else principal.name or "")
        except StoreError as exc:
            raise unavailable(f"Cannot read the ledger: {exc}", "ledger_unavailable") from None
        if entry is None:
            raise NotFoundError(f"No request {request_id!r} in the ledger.", param="request_id")
        return JSONResponse(detail_dict(entry), headers={"cache-control": "no-store"})

    return handler


def routes(access: DashboardAccess, ledger: LedgerService | None) -> list[Route]:
    """The explorer's two routes."""
    return [Route("/dashboard/requests", requests_list(access, ledger), methods=["GET"]),
            Route("/dashboard/requests/{request_id}", request_detail(access, ledger),
                  methods=["GET"])]
