"""The live dashboard: `GET /dashboard` (a self-contained HTML page: inline CSS and vanilla JS, no
external resources) and `GET /dashboard/data?since=24h` (the `llmroute report` numbers as JSON).

Both sit behind the gateway keys: a person logs in through the page's form and holds a session
cookie (`dashboard_login`), a script sends `Authorization: Bearer`; a key in the URL is refused.
An admin key sees the whole gateway; an application key only its own requests, spend and budgets
(no other key's name, no experiments, no alerts). With the ledger disabled the page says so and
the data endpoint answers 503.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ..control.alert_store import recent_alerts
from ..control.experiment_report import ExperimentReport, report_from_rollups
from ..control.experiment_report import report_dict as experiment_report_dict
from ..control.experiments import ExperimentConfig
from ..errors import InvalidRequestError, LLMRouteError, UnavailableError
from ..ledger import StoreError
from ..ledger.series import DashboardSeries, dashboard_series
from ..ledger.service import LedgerService
from ..ledger.views import key_numbers, numbers_with
from ..outcome import Principal
from ..reports.aggregate import NONE_LABEL, Summary, report_from
from ..reports.caching import caching_text
from ..reports.plane import KIND_LABELS, LabFrontier, PlanePoint, ledger_points, plane_dicts
from ..reports.render import COLUMNS, report_dict, row
from ..reports.window import parse_when
from .dashboard_login import PAGE_HEADERS, DashboardAccess, login_page
from .dashboard_page import DEFAULT_WINDOW, render_page

Handler = Callable[[Request], Awaitable[Response]]
#: The calling key's budgets (`GET /v1/budgets`' items), for the page.
Budgets = Callable[[Principal], Awaitable[list[dict[str, object]]]]

def page(access: DashboardAccess, ledger: LedgerService | None) -> Handler:
    """The `GET /dashboard` handler: the page, or the login form without credentials."""
    async def handler(request: Request) -> Response:
        if await access.principal(request) is None:
            return login_page()
        if ledger is not None:
            ledger.reads.warm()  # the page asks for its data next
        return HTMLResponse(render_page(ledger is not None, not access.keys.open),
                            headers=PAGE_HEADERS)

    return handler


def data(access: DashboardAccess, ledger: LedgerService | None, baseline: str,
         experiments: Sequence[ExperimentConfig], budgets: Budgets,
         teams: Mapping[str, str | None] | None = None) -> Handler:
    """The `GET /dashboard/data?since=24h` handler: `report_dict` of the window, by model; each
    configured experiment's report over the window; the alerts raised in it; the caller's budgets.
    For an application key, only its own requests, and neither experiments nor alerts; `series`:
    spend, requests, errors and mean rating per hour or day, and spend per key and team (`teams`:
    key name -> team; an application key: its own row only)."""
    from .app import JSONResponse

    key_teams = dict(teams or {})

    async def handler(request: Request) -> Response:
        principal = await access.required(request)
        if ledger is None:
            raise ledger_disabled()
        now = datetime.now(UTC)
        start = window_of(request, now)
        arms = None
        try:
            if principal.admin:
                # the report by model and, read in the same pass, the experiments' arms (off the
                # request path: `ledger.reads` runs it in the low-priority reader process)
                numbers, rolled = await ledger.reads.call(numbers_with, "model", start, now,
                                                          ("policy", "arm") if experiments
                                                          else ("policy",))
                arms = rolled.get("arm")
                groups = {key: window.aggregate() for key, window in rolled.items()}
            else:  # an application key: its own rows only (the ledger's key_name index)
                numbers, policies = await ledger.reads.call(key_numbers, principal.name or "",
                                                            start, now)
                groups = {"policy": policies}
            report = report_from(numbers.aggregate, baseline)
            series = await ledger.reads.call(dashboard_series, start, now,
                                             None if principal.admin else principal.name or "",
                                             key_teams)
            routed = [point for key in ("policy", "arm") if key in groups
                      for point in ledger_points((), [
                          s for s in report_from(groups[key]).groups
                          if s.label != NONE_LABEL], f"{key} ")]
        except StoreError as exc:
            raise unavailable(f"Cannot read the ledger: {exc}", "ledger_unavailable") from None
        body = report_dict(report, {"since": start.isoformat(), "until": now.isoformat(),
                                    "latency_percentiles": numbers.percentiles_note})
        # the cells exactly as `llmroute report` prints them (so the page never rounds differently)
        body["text"] = {"total": dict(zip(COLUMNS, row(report.total), strict=True)),
                        "groups": [dict(zip(COLUMNS, row(s), strict=True)) for s in report.groups]}
        body["caching"] = caching_text(report)
        body["plane"] = plane_body(report.groups, routed, getattr(request.app.state, "frontier", None))
        body["experiments"] = [experiment_dict(report_from_rollups(e, arms, now))
                               for e in experiments] if arms is not None else []
        body["alerts"] = await _alerts(ledger, start) if principal.admin else []
        body["budgets"] = await budgets(principal)
        body["role"] = "admin" if principal.admin else "app"
        body["series"] = series_dict(series, principal.admin)
        return JSONResponse(body, headers={"cache-control": "no-store"})

    return handler


def window_of(request: Request, now: datetime) -> datetime:
    """The start of the window `?since=` asks for (default `DEFAULT_WINDOW`); 400 when bad."""
    since = request.query_params.get("since", DEFAULT_WINDOW)
    try:
        start = parse_when(since, now)
    except ValueError as exc:
        raise InvalidRequestError(str(exc), param="since") from None
    if start >= now:
        raise InvalidRequestError("`since` must be in the past.", param="since")
    return start


async def _alerts(ledger: LedgerService, start: datetime) -> list[dict[str, object]]:
    try:
        return await recent_alerts(ledger.store, start)
    except StoreError:
        return []


def series_dict(series: DashboardSeries, admin: bool) -> dict[str, Any]:
    """The series as JSON: bucket starts as ISO 8601 UTC, money as exact decimal strings; the
    spend per team for an admin only."""
    body = asdict(series)
    if not admin:
        del body["teams"]
    for point in body["points"]:
        point["start"] = point["start"].isoformat()
    return body


def plane_body(models: Sequence[Summary], routed: Sequence[PlanePoint], frontier: object
               ) -> dict[str, Any]:
    """The cost–quality plane's points: each model's from the ledger (the requests it served), the
    routed traffic's (per policy and experiment arm), and the lab's when the app holds a
    `LabFrontier` in `app.state.frontier` (`llmroute demo --keep-serving` sets it)."""
    points = [*ledger_points(models, ()), *routed]
    lab = frontier if isinstance(frontier, LabFrontier) else None
    if lab is not None:
        points += lab.points
    return {"points": plane_dicts(points), "kinds": dict(KIND_LABELS),
            "measured_on": lab.measured_on if lab else None}


def experiment_dict(report: ExperimentReport) -> dict[str, Any]:
    """An experiment's report as the page shows it: per arm, its numbers and its verdicts."""
    full = experiment_report_dict(report)
    verdicts = {c["arm"]: {m["metric"]: m["verdict"] for m in c["metrics"]}
                for c in full["comparisons"]}
    return {"name": full["experiment"], "status": full["status"], "control": full["control"],
            "arms": [{**arm, "verdicts": verdicts.get(arm["arm"], {})} for arm in full["arms"]]}


def unavailable(message: str, code: str) -> LLMRouteError:
    """A 503 error in the OpenAI shape."""
    return UnavailableError(message, code=code)


def ledger_disabled() -> LLMRouteError:
    """The 503 the data endpoint answers when the ledger is off."""
    return unavailable("The ledger is disabled: the dashboard has no data. Enable `ledger:` in the "
                       "gateway config.", "ledger_disabled")
