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

from ..config import load
from ..control.alert_delivery import Delivery, Receipt
from ..control.alert_store import AlertRecord, list_alerts
from ..control.alert_tallies import EVERYTHING
from ..control.alerts import Alert
from ..control.alerts_config import AlertsConfig
from ..reports.tables import Layout, fit
from .common import (
    EXIT_ERROR,
    MARKUP,
    csv_option,
    err,
    friendly_errors,
    json_option,
    ledger_window,
    out,
    print_table,
    wide_option,
    write_csv,
)
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


#: The alert history's columns; `--wide` adds the subject.
ALERT_LAYOUT = Layout(("time (UTC)", "severity", "rule", "message", "sent", "subject"),
                      extra=("subject",), drop_first=("severity",),
                      wrap=("rule", "message", "subject"),
                      left=("severity", "rule", "message", "sent", "subject"))


def _cells(record: AlertRecord) -> dict[str, str]:
    a = record.alert
    return {"time (UTC)": a.ts.strftime("%Y-%m-%d %H:%M:%S"), "severity": a.severity,
            "rule": a.rule, "message": a.message, "sent": "yes" if record.delivered else "NO",
            "subject": a.subject}


@app.command("list")
def list_command(
    since: str = typer.Option("7d", "--since", help="Start: a duration back from now (30m, 12h, "
                                                    "7d) or an ISO date/time."),
    until: str | None = typer.Option(None, "--until", help="End (default: now)."),
    limit: int = typer.Option(200, "--limit", min=1, help="At most this many, newest first."),
    as_json: bool = json_option(),
    as_csv: bool = csv_option(),
    wide: bool = wide_option("subject"),
    config: Path | None = _CONFIG,
) -> None:
    """The alert history (from the ledger database), newest first: time, severity, rule, message
    and whether it was sent to every destination."""
    start, end = ledger_window(since, until)
    records = with_store(config, lambda store: list_alerts(store, start, end, limit))
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in records], indent=2, ensure_ascii=False))
        return
    if as_csv:
        write_csv([r.to_dict() for r in records])
        return
    if not records:
        out.print(f"no alerts since {start.isoformat()}")
        return
    print_table(fit(ALERT_LAYOUT, None, [_cells(r) for r in records], wide, out.width), wide)
