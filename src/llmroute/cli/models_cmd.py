"""`llmroute models`: the catalog as a table (or JSON)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from ..catalog import ModelSpec, bundled_prices, resolve_model
from .common import engine_from, friendly_errors, out
from .models_abilities import SAMPLE_PROMPT, print_abilities


def _price(value: Decimal | None) -> str:
    return "unpriced" if value is None else f"{value.normalize():f}"


def spec_dict(spec: ModelSpec) -> dict[str, Any]:
    """A JSON-ready view of a model (prices as exact decimal strings, null when unknown)."""
    def money(value: Decimal | None) -> str | None:
        return None if value is None else format(value.normalize(), "f")

    return {
        "name": spec.name, "provider": spec.provider, "tier": spec.tier, "priced": spec.priced,
        "input_per_m": money(spec.input_per_m), "output_per_m": money(spec.output_per_m),
        "cached_input_per_m": money(spec.cached_input_per_m),
        "context_window": spec.context_window, "max_output_tokens": spec.max_output_tokens,
        "capabilities": sorted(spec.capabilities), "source": spec.source, "like": spec.like,
    }


def _table(specs: list[ModelSpec], title: str) -> Table:
    table = Table(title=title)
    for column in ("model", "provider", "tier", "$/1M in", "$/1M out", "$/1M cached",
                   "context", "max out", "capabilities"):
        justify = "right" if column.startswith("$") or column in {"context", "max out"} else "left"
        table.add_column(column, justify=justify, no_wrap=column == "model")  # type: ignore[arg-type]
    for spec in specs:
        style = "yellow" if not spec.priced else None
        table.add_row(spec.name, spec.provider, spec.tier or "-", _price(spec.input_per_m),
                      _price(spec.output_per_m), _price(spec.cached_input_per_m),
                      f"{spec.context_window:,}" if spec.context_window else "?",
                      f"{spec.max_output_tokens:,}" if spec.max_output_tokens else "?",
                      ",".join(sorted(spec.capabilities)) or "-", style=style)
    return table


def models(
    tier: str | None = typer.Option(None, "--tier", "-t", help="Only models of this tier."),
    all_models: bool = typer.Option(False, "--all", help="The whole bundled price snapshot, "
                                    "not only the models your tiers use."),
    search: str | None = typer.Option(None, "--search", "-s", help="Substring filter on names."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    config: Path | None = typer.Option(None, "--config", "-c", help="Config file."),
    abilities: bool = typer.Option(False, "--abilities", help="The learned router's profile of "
                                   "each pool model: where it comes from, P(good) on --prompt."),
    policy: str | None = typer.Option(None, "--policy", "-p", help="With --abilities: the policy "
                                      "whose classifier to show (default: the default policy's)."),
    prompt: str = typer.Option(SAMPLE_PROMPT, "--prompt", help="With --abilities: the sample prompt."),
) -> None:
    """List the model catalog: prices per 1M tokens, context windows, tiers, capabilities."""
    with friendly_errors():
        engine = engine_from(config)
        if abilities:
            print_abilities(engine, policy, prompt, as_json)
            return
    specs = list(engine.catalog)
    if all_models:
        known = {spec.name for spec in specs}
        extra = (resolve_model(name, None) for name in bundled_prices() if name not in known)
        specs += [spec for spec in extra if spec is not None]
    if tier:
        specs = [spec for spec in specs if spec.tier == tier]
    if search:
        specs = [spec for spec in specs if search.lower() in spec.name.lower()]
    if as_json:
        out.print_json(json.dumps([spec_dict(spec) for spec in specs]))
        return
    unpriced = sum(not spec.priced for spec in specs)
    title = f"{len(specs)} models" + (f" ({unpriced} unpriced)" if unpriced else "")
    out.print(_table(specs, title))
