"""`llmroute report`: spend, savings, quality and latency over the ledger, as a table, JSON or HTML."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ..ledger.store import Store
from ..ledger.views import ROLLUP_ONLY, WindowNumbers, window_numbers
from ..reports.aggregate import GROUP_KEYS, NONE_LABEL, Report, report_from
from ..reports.cache_hits import DEFAULT_LIMIT, ServedHit
from ..reports.plane import LabFrontier, PlanePoint, ledger_points
from ..reports.span import Span, traffic_span
from .common import (
    EXIT_ERROR,
    err,
    ledger_window,
    missing_sqlite_file,
    on_ledger,
    out,
    print_table,
    wide_option,
    write_csv,
)

if TYPE_CHECKING:
    from ..engine import Engine


def _engine(config: Path | None) -> Engine:
    """The configured engine; exit 0 with a note when its SQLite ledger does not exist yet."""
    from .common import engine_from, friendly_errors

    with friendly_errors():
        engine = engine_from(config)
    missing = missing_sqlite_file(engine.settings.ledger.url)
    if missing is not None:
        out.print(f"No ledger yet at {missing}: nothing to report. Requests are recorded once the "
                  "gateway serves traffic (llmroute serve).", markup=False)
        for demo in demo_configs(Path()):
            out.print(f"The demo's ledger is {demo.parent / 'ledger.db'}: llmroute report -c "
                      f"{demo}", markup=False)
        raise typer.Exit(0)
    return engine


#: Where `make demo` and `llmroute demo --out` leave a ledger with its `llmroute.yaml`.
DEMO_FOLDERS = ("out/demo", "out/demo-control")


def demo_configs(here: Path) -> list[Path]:
    """The demos' `llmroute.yaml` files under `here` (each names its ledger), to point at; relative
    to the working directory when `here` is `Path()`."""
    return [here / folder / "llmroute.yaml" for folder in DEMO_FOLDERS
            if (here / folder / "llmroute.yaml").exists() and (here / folder / "ledger.db").exists()]


def _load(config: Path | None, start: datetime, end: datetime, keys: tuple[str, ...],
          exact: bool = False) -> tuple[dict[str, WindowNumbers], str, Span | None]:
    """The window's numbers per grouping key (`ledger.views.window_numbers`: computed by the
    ledger's database from its rollups or raw rows, never the entries themselves), the
    configured baseline model's name, and the traffic's first and last request."""
    engine = _engine(config)
    url = engine.settings.ledger.url
    teams = {key.name: key.team for key in engine.settings.keys}

    async def work(store: Store) -> tuple[dict[str, WindowNumbers], Span | None]:
        found = {key: await window_numbers(store, key, start, end, exact=exact, teams=teams)
                 for key in keys}
        return found, await traffic_span(store, start, end)

    found, span = on_ledger(url, work)
    return found, engine.baseline_model, span


def report(
    since: str = typer.Option("7d", "--since", help="Start: a duration back from now (30m, 12h, "
                              "7d, 4w) or an ISO date/time (UTC when no zone is given)."),
    until: str | None = typer.Option(None, "--until", help="End (exclusive), same forms; "
                                     "default: now."),
    by: str = typer.Option("model", "--by", help="Group by model, tier, policy, key, day (UTC), "
                    "arm (experiment arm), team (each gateway key's configured team) or explored "
                    "(learning online: explored vs routed requests, from the raw rows)."),
    html_path: Path | None = typer.Option(None, "--html", help="Also write a self-contained HTML "
                                          "report with plots to this file."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (money as exact strings)."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV for scripts: a line per group and "
                                "the total (with --cache-hits: per hit), plain numbers."),
    wide: bool = wide_option("errors, success, unpriced, p50/p95 latency, $/success, model "
                             "mix; the caching table's misses, bypasses and tokens; with "
                             "--cache-hits: model, key and whole texts"),
    exact: bool = typer.Option(False, "--exact", help="Exact latency percentiles from every raw "
                               "row of the window (slow on a large ledger). By default a window of "
                               "more than 20,000 requests reads the hourly and daily rollups, whose "
                               "percentiles are within 1%; every other number is exact either way."),
    frontier: Path | None = typer.Option(None, "--frontier", help="With --html: also plot the "
                                         "lab's cost–quality points from this JSON (the "
                                         "`frontier.json` `llmroute demo` writes)."),
    cache_hits: bool = typer.Option(False, "--cache-hits", help="Instead of the report, list "
                                    "the answers the semantic cache served (time, similarity, "
                                    "the prompt, the cached prompt it matched, the answer), "
                                    "oldest first, to judge them."),
    limit: int = typer.Option(DEFAULT_LIMIT, "--limit", min=1, help="With --cache-hits: how "
                              "many hits to list."),
    config: Path | None = typer.Option(None, "--config", "-c", help="Config (the ledger's URL)."),
) -> None:
    """What the traffic cost, what the baseline model would have cost, success, ratings and
    latency, per model, tier, policy, key or day; what caching saved beside what routing saved."""
    if by not in (*GROUP_KEYS, *ROLLUP_ONLY):
        err.print(f"[red]error:[/] --by must be one of {', '.join((*GROUP_KEYS, *ROLLUP_ONLY))}, "
                  f"got {by!r}")
        raise typer.Exit(EXIT_ERROR)
    start, end = ledger_window(since, until)
    if cache_hits:
        _show_hits(config, start, end, limit, _form(as_json, as_csv, wide))
        return
    lab = _frontier(frontier)
    keys = tuple(dict.fromkeys((by, *HTML_KEYS) if html_path is not None else (by,)))
    found, baseline, traffic = _load(config, start, end, keys, exact)
    result = report_from(found[by].aggregate, baseline)
    window = {"since": start.isoformat(), "until": end.isoformat(),
              "first_request": traffic.first.isoformat() if traffic else None,
              "last_request": traffic.last.isoformat() if traffic else None,
              "latency_percentiles": found[by].percentiles_note}
    span = f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
    if result.total.requests == 0:
        message = f"No requests in the ledger from {span}: nothing to report."
        if as_json:
            out.print_json(json.dumps({**window, "by": by, "requests": 0, "message": message}))
        else:
            out.print(message)
        return
    if traffic is not None:
        span = f"{traffic.text()} (window {span})"
    _show(result, found, window, span, html_path, _form(as_json, as_csv, wide), lab)


def _form(as_json: bool, as_csv: bool, wide: bool) -> str:
    return "json" if as_json else "csv" if as_csv else ("wide" if wide else "table")


def _show_hits(config: Path | None, start: datetime, end: datetime, limit: int,
               form: str) -> None:
    """`--cache-hits`: the semantic cache's answers in the window (`reports.cache_hits`)."""
    from ..reports.cache_hits import hit_dict, hits_table, semantic_hits

    async def work(store: Store) -> list[ServedHit]:
        return await semantic_hits(store, start, end, limit=limit)

    hits = on_ledger(_engine(config).settings.ledger.url, work)
    if form == "json":
        out.print_json(json.dumps({"since": start.isoformat(), "until": end.isoformat(),
                                   "limit": limit, "semantic_hits": [hit_dict(h) for h in hits]}))
    elif form == "csv":
        write_csv([hit_dict(h) for h in hits])
    elif not hits:
        out.print(f"No semantic cache hits from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC.",
                  markup=False)
    else:
        print_table(hits_table(hits, form == "wide", out.width), form == "wide")
        more = " (the first ones; --limit for more)" if len(hits) == limit else ""
        out.print(f"{len(hits)} semantic hits{more}.", markup=False)


#: The groupings the HTML page reads besides `--by`: plots by day and model, the routed traffic's
#: points per policy and experiment arm.
HTML_KEYS = ("day", "model", "policy", "arm")


def _frontier(path: Path | None) -> LabFrontier | None:
    if path is None:
        return None
    try:
        return LabFrontier.load(path)
    except (OSError, ValueError, KeyError) as exc:
        err.print(f"[red]error:[/] cannot read the frontier {path}: {exc}")
        raise typer.Exit(EXIT_ERROR) from None


def routed_points(found: dict[str, WindowNumbers]) -> list[PlanePoint]:
    """The routed traffic's points: one per policy and one per experiment arm (not the requests
    outside any experiment)."""
    policies = report_from(found["policy"].aggregate).groups
    arms = [s for s in report_from(found["arm"].aggregate).groups if s.label != NONE_LABEL]
    return [*ledger_points((), policies, "policy "), *ledger_points((), arms, "arm ")]


def _show(result: Report, found: dict[str, WindowNumbers], window: dict[str, str | None],
          span: str, html_path: Path | None, form: str, lab: LabFrontier | None = None) -> None:
    """Print the report as `form`: table (fits the terminal), wide, json or csv."""
    from ..reports.caching import cache_table, savings_text
    from ..reports.render import csv_text, headline, mix_text, report_dict, table

    requests = f"{result.total.requests} requests, {span}"
    if html_path is not None:
        from ..reports.page import plots, render_html

        days, models = (report_from(found[key].aggregate).groups for key in ("day", "model"))
        routed = routed_points(found)
        plane = [*ledger_points(models, ()), *routed, *(lab.points if lab else ())]
        html_path.write_text(render_html(result, requests,
                                         plots(days, models, result.total, routed, lab), plane),
                             encoding="utf-8")
    if form == "json":
        out.print_json(json.dumps(report_dict(result, window)))
        return
    if form == "csv":
        out.file.write(csv_text(result))
        return
    out.print(requests, markup=False)
    out.print(headline(result), markup=False)
    savings = savings_text(result)
    if savings is not None:
        out.print(savings, markup=False)
    out.print(f"Model mix: {mix_text(result.total, top=5)}", markup=False)
    wide = form == "wide"
    print_table(table(result, wide, out.width), wide)
    caching = cache_table(result, wide, out.width)
    if caching is not None:
        print_table(caching, wide)
    if not found[result.by].exact_percentiles:
        out.print("Latency percentiles from the ledger's rollups, within 1% (--exact: from every "
                  "row).", markup=False)
    if html_path is not None:
        out.print(f"[green]✓[/] HTML report → {html_path}")
