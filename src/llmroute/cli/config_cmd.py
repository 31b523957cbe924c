"""`llmroute config check`: validate a configuration and report every problem with a hint."""

from __future__ import annotations

from pathlib import Path

import typer

from ..config import check
from .common import EXIT_CONFIG, MARKUP, err, out

app = typer.Typer(help="Inspect and validate configuration.", no_args_is_help=True,
                  rich_markup_mode=MARKUP)


@app.command("check")
def check_cmd(
    file: Path | None = typer.Argument(None, help="Config file (default: $LLMROUTE_CONFIG, "
                                       "./llmroute.yaml, or the embedded defaults)."),
    config: Path | None = typer.Option(None, "--config", "-c",
                                       help="The config file, as in every other command (the "
                                            "same as giving it as the argument)."),
) -> None:
    """Validate a config file; exit 2 when it has errors (warnings alone exit 0)."""
    if file is not None and config is not None and file != config:
        err.print(f"[red]Two config files given:[/] {file} and --config {config}; give one.")
        raise typer.Exit(EXIT_CONFIG)
    checked = check(file or config)
    for problem in checked.problems:
        mark = "[red]✗ error[/]" if problem.severity == "error" else "[yellow]! warning[/]"
        hint = f"\n      [dim]hint: {problem.hint}[/]" if problem.hint else ""
        err.print(f"  {mark} [bold]{problem.path or '<root>'}[/]: {problem.message}{hint}")
    if checked.errors:
        err.print(f"[bold red]{checked.source}: {len(checked.errors)} error(s)[/]")
        raise typer.Exit(EXIT_CONFIG)
    settings = checked.settings
    assert settings is not None
    warnings = len(checked.problems)
    out.print(f"[green]✓[/] {checked.source} is valid: {len(settings.tiers)} tiers "
              f"({', '.join(settings.tiers)}), {len(settings.policies)} policies, "
              f"{len(settings.rules)} rules" + (f", {warnings} warning(s)" if warnings else ""))
