"""`llmroute budgets` (each limit's use, remaining and reset time, read from the shared state) and
`llmroute keys limit` (set a key's own limit in the config file)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC
from decimal import Decimal
from pathlib import Path

import typer
import yaml

from ..config import check, find_config, load
from ..control.limits import Limiter, LimitUsage, Subject, limits_of
from ..control.shared import open_state
from ..control.state import StateUnavailable
from ..reports.tables import Layout, fit
from ..settings import Settings
from .common import (
    csv_option,
    err,
    friendly_errors,
    json_option,
    out,
    print_table,
    wide_option,
    write_csv,
)


def budgets(
    config: Path | None = typer.Option(None, "--config", "-c", help="Config file."),
    user: list[str] = typer.Option([], "--user", help="Also show the limits of this end user."),
    as_json: bool = json_option(),
    as_csv: bool = csv_option(),
    wide: bool = wide_option("scope, hard"),
) -> None:
    """Each limit's use, remaining and reset time: the global limits, each key's and its team's
    (and with --user, that user's), read from the shared state (`state.url`)."""
    with friendly_errors():
        settings = load(config)
    if settings.state.url.startswith("memory://"):
        err.print("The shared state is in-process (`state.url: memory://`): its counters live in the "
                  "gateway process. Ask it with `GET /v1/budgets`, or share the state through Redis.")
        raise typer.Exit(2)
    try:
        usage = asyncio.run(_usage(settings, user))
    except StateUnavailable as exc:
        err.print(f"Cannot reach the shared state at {settings.state.url.split('@')[-1]}: {exc}")
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps([u.to_dict() for u in usage], indent=2))
        return
    if as_csv:
        write_csv([u.to_dict() for u in usage])
        return
    if not usage:
        out.print("No limits apply (configure `limits:` or a key's `limits:`).")
        return
    rows = [budget_cells(u) for u in usage]
    print_table(fit(BUDGET_LAYOUT, None, rows, wide, out.width), wide)


#: The budgets table's columns (amounts in the limit's unit: `$` for USD); `--wide` adds the
#: limit's scope and whether it is hard.
BUDGET_LAYOUT = Layout(("limit", "subject", "window", "used", "cap", "left", "resets (UTC)",
                        "scope", "hard"), extra=("hard", "scope"), drop_first=("window",),
                       wrap=("subject", "resets (UTC)", "scope"),
                       left=("subject", "window", "resets (UTC)", "scope", "hard"))


def budget_cells(usage: LimitUsage) -> dict[str, str]:
    """One limit's cells."""
    d = usage.to_dict()
    money = "$" if usage.limit.allowance.unit == "usd" else ""
    return {"limit": usage.limit.name, "subject": usage.subject,
            "window": usage.limit.allowance.window, "used": f"{money}{d['used']}",
            "cap": f"{money}{d['limit']}", "left": f"{money}{d['remaining']}",
            "resets (UTC)": f"{usage.resets_at.astimezone(UTC):%Y-%m-%d %H:%M}",
            "scope": usage.limit.scope, "hard": "yes" if usage.limit.allowance.hard else "no"}


def subjects(settings: Settings, users: list[str]) -> list[Subject]:
    """Whose limits to show: everyone's (global), each key (with its team), the given users."""
    return [Subject(), *(Subject(key=k.name, team=k.team) for k in settings.keys),
            *(Subject(user=u) for u in users)]


async def _usage(settings: Settings, users: list[str]) -> list[LimitUsage]:
    from zoneinfo import ZoneInfo

    state = open_state(settings.state)
    limiter = Limiter(limits_of(settings), state, ZoneInfo(settings.control.timezone))
    try:
        seen: dict[str, LimitUsage] = {}
        for who in subjects(settings, users):
            for u in await limiter.usage(who):
                seen.setdefault(f"{u.limit.name}:{u.subject}", u)
        return list(seen.values())
    finally:
        await state.aclose()


def set_key_limit(
    name: str = typer.Argument(..., help="The key's name (as in `keys:`)."),
    window: str = typer.Option("day", "--window", help="minute, hour, day, week or month."),
    usd: Decimal | None = typer.Option(None, "--usd", help="Spend limit in USD."),
    requests: int | None = typer.Option(None, "--requests", help="Requests per window."),
    tokens: int | None = typer.Option(None, "--tokens", help="Tokens per window."),
    soft: bool = typer.Option(False, "--soft", help="Only alert, never refuse."),
    config: Path | None = typer.Option(None, "--config", "-c", help="Config file to edit."),
) -> None:
    """Set (or replace) a key's limit for one window and unit in the config file, then check it.
    The file is rewritten by a YAML dumper: comments in it are not kept."""
    path = find_config(config, {})
    if path is None:
        err.print("No config file: give --config FILE.")
        raise typer.Exit(2)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entry = next((k for k in data.get("keys") or [] if isinstance(k, dict) and k.get("name") == name),
                 None)
    if entry is None:
        err.print(f"No key named {name!r} under `keys:` in {path}.")
        raise typer.Exit(2)
    limit = {"window": window, "hard": not soft,
             **{k: v for k, v in (("usd", str(usd) if usd is not None else None),
                                  ("requests", requests), ("tokens", tokens)) if v is not None}}
    units = {"usd", "requests", "tokens"} & limit.keys()
    kept = [lim for lim in entry.get("limits") or []
            if not (lim.get("window", "day") == window and units & lim.keys())]
    entry["limits"] = [*kept, limit]
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    result = check(path)
    for problem in result.errors:
        err.print(f"  ✗ {problem}")
    if result.errors:
        raise typer.Exit(2)
    out.print(f"{name}: {limit} written to {path}")
