"""`llmroute alerts test` (a sample alert to the log and every configured webhook) and
`llmroute alerts list` (the alert history kept in the ledger database)."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table

from ..config import load
from ..control.alert_delivery import Delivery, Receipt
from ..control.alert_store import AlertRecord, list_alerts
from ..control.alert_tallies import EVERYTHING
from ..control.alerts import Alert
from ..control.alerts_config import AlertsConfig
from .common import EXIT_ERROR, MARKUP, err, friendly_errors, ledger_window, out
from .db_cmd import with_store

app = typer.Typer(help="Alerts: send a test alert, list the history.", no_args_is_help=True,
                  rich_markup_mode=MARKUP)
_CONFIG = typer.Option(None, "--config", "-c", help="Config file.")


def sample_alert() -> Alert:
    """The alert `alerts test` sends."""
    now = datetime.now(UTC)
    return Alert(rule="test", kind="test", severity="info", subject=EVERYTHING,
                 message="Test alert from `llmroute alerts test`: if you read this, delivery works.",
                 data={"host": socket.gethostname()}, ts=now, dedup_key=f"alert:test:{uuid.uuid4().hex}")


async def _send(config: AlertsConfig, alert: Alert) -> Receipt:
    delivery = Delivery(config)
    try:
        return await delivery.deliver(alert)
    finally:
        await delivery.aclose()


@app.command("test")
def test(config: Path | None = _CONFIG) -> None:
    """Send a sample alert to the log and every configured webhook; exit 1 unless all take it."""
    with friendly_errors():
        alerts = load(config).alerts
    receipt = asyncio.run(_send(alerts, sample_alert()))
    if not receipt.outcomes:
        err.print("[red]error:[/] no destination: set alerts.webhooks or alerts.log: true")
        raise typer.Exit(EXIT_ERROR)
    for o in receipt.outcomes:
        tries = f" after {o.tries} tries" if o.tries > 1 else ""
        line = f"✓ {o.target}{tries}" if o.ok else f"✗ {o.target}: {o.error}{tries}"
        out.print(line, markup=False)
    if not alerts.webhooks:
        out.print("no webhooks configured (alerts.webhooks): the alert went to the log only")
    failed = [o for o in receipt.outcomes if not o.ok]
    if failed:
        err.print(f"[red]error:[/] {len(failed)} of {len(receipt.outcomes)} destination(s) did "
                  "not take the test alert")
        raise typer.Exit(EXIT_ERROR)


def _table(records: list[AlertRecord]) -> Table:
    table = Table("time (UTC)", "severity", "rule", "subject", "message", "delivered")
    for r in records:
        a = r.alert
        table.add_row(a.ts.strftime("%Y-%m-%d %H:%M:%S"), a.severity, a.rule, a.subject, a.message,
                      "yes" if r.delivered else "NO")
    return table


@app.command("list")
def list_command(
    since: str = typer.Option("7d", "--since", help="Start: a duration back from now (30m, 12h, "
                                                    "7d) or an ISO date/time."),
    until: str | None = typer.Option(None, "--until", help="End (default: now)."),
    limit: int = typer.Option(200, "--limit", min=1, help="At most this many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    config: Path | None = _CONFIG,
) -> None:
    """The alert history (from the ledger database), newest first."""
    start, end = ledger_window(since, until)
    records = with_store(config, lambda store: list_alerts(store, start, end, limit))
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in records], indent=2, ensure_ascii=False))
        return
    if not records:
        out.print(f"no alerts since {start.isoformat()}")
        return
    out.print(_table(records))
