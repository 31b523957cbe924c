"""The `llmroute` typer application: wires the command modules together."""

from __future__ import annotations

import typer

from .. import __version__
from . import config_cmd, db_cmd
from .alerts_cmd import app as alerts_app
from .budgets_cmd import budgets, set_key_limit
from .common import MARKUP
from .demo_cmd import demo
from .experiments_cmd import app as experiments_app
from .export_cmd import export_command
from .help_format import plain_flags
from .learn_cmd import calibrate, evaluate, predict, train
from .models_cmd import models
from .replay_cmd import replay_command
from .report_cmd import report
from .route_cmd import route
from .serve_cmd import keys_app, serve

app = typer.Typer(
    name="llmroute",
    help="Send every LLM request to the cheapest model that can handle it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=MARKUP,
)
plain_flags()


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"llmroute {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    show_version: bool = typer.Option(False, "--version", "-V", is_eager=True,
                                      callback=_show_version, help="Print the version and exit."),
) -> None:
    """Send every LLM request to the cheapest model that can handle it."""
app.add_typer(config_cmd.app, name="config")
app.add_typer(alerts_app, name="alerts")
app.add_typer(db_cmd.app, name="db")
app.add_typer(experiments_app, name="experiments")
app.command("feedback")(db_cmd.feedback)
app.command("models")(models)
app.command("route")(route)
app.command("serve")(serve)
app.add_typer(keys_app, name="keys")
keys_app.command("limit")(set_key_limit)
app.command("budgets")(budgets)
app.command("train")(train)
app.command("predict")(predict)
app.command("eval")(evaluate)
app.command("calibrate")(calibrate)
app.command("demo")(demo)
app.command("report")(report)
app.command("export")(export_command)
app.command("replay")(replay_command)


@app.command("version")
def version() -> None:
    """Print llmroute's version."""
    typer.echo(__version__)


def run() -> None:
    """Console-script entry point."""
    app()
