"""`llmroute demo`: replay recorded routerbench traffic through a local gateway and show the savings."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import friendly_errors, out


def demo(
    requests: int | None = typer.Option(None, "--requests", "-n", min=1,
                                        help="Prompts to send (default: all 952 test prompts)."),
    concurrency: int = typer.Option(16, "--concurrency", "-j", min=1, help="Requests in flight."),
    port: int = typer.Option(0, "--port", help="Gateway port (default: a free one)."),
    keep_serving: bool = typer.Option(False, "--keep-serving",
                                      help="Leave the gateway up afterwards (for the dashboard)."),
    out_dir: Path | None = typer.Option(None, "--out", help="Folder for the ledger and summary "
                                        "(default: a new temporary folder)."),
    control: bool = typer.Option(False, "--control", help="The control demo instead: an A/B "
                                 "experiment of two policies and a budget that downgrades."),
    config: Path | None = typer.Option(None, "--config", "-c", help="A config whose sections are "
                                       "laid over the demo's (e.g. your own tiers or policies on "
                                       "the demo's models); tables replace, settings merge."),
) -> None:
    """Replay the routerbench test prompts through the gateway (model=auto, no API keys needed) and
    print what routing saved against always-gpt-4, and how much quality it kept."""
    from ..demo import DemoOptions, run_demo

    with friendly_errors():
        run_demo(DemoOptions(requests, concurrency, port, keep_serving, out_dir, control, config),
                 out)
