"""`llmroute models`: the catalog as a table (or JSON)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from ..catalog import ModelSpec, bundled_prices, resolve_model
from ..reports.tables import LABEL_MIN, fitting, grid
from .common import engine_from, friendly_errors, out, print_table, wide_option
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


#: Every column (`--wide`), and the ones that fit 80 terminal columns (the default).
COLUMNS = ("model", "provider", "tier", "$/1M in", "$/1M out", "$/1M cached", "context",
           "max out", "capabilities")
NARROW = ("model", "tier", "$/1M in", "$/1M out", "context")
#: The narrow table's columns to leave out first when the terminal is narrower still.
DROP_FIRST = ("context", "tier")


def _cells(spec: ModelSpec) -> dict[str, str]:
    return {"model": spec.name, "provider": spec.provider, "tier": spec.tier or "-",
            "$/1M in": _price(spec.input_per_m), "$/1M out": _price(spec.output_per_m),
            "$/1M cached": _price(spec.cached_input_per_m),
            "context": f"{spec.context_window:,}" if spec.context_window else "?",
            "max out": f"{spec.max_output_tokens:,}" if spec.max_output_tokens else "?",
            "capabilities": ",".join(sorted(spec.capabilities)) or "-"}


def _table(specs: list[ModelSpec], title: str, wide: bool = False,
           width: int | None = None) -> Table:
    """The catalog table: prices and numbers always whole, a long model name folded onto more
    lines (never cut to `mo…`); narrow: `NARROW` less `DROP_FIRST` ones until it fits `width`."""
    rows = [_cells(spec) for spec in specs]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in NARROW[1:]}
    label = min(LABEL_MIN, max(len(r["model"]) for r in rows)) if rows else LABEL_MIN
    columns = COLUMNS[1:] if wide else fitting(widths, DROP_FIRST, label, width)
    table = grid(title, ["model", *columns], [[r["model"], *(r[c] for c in columns)] for r in rows],
                 ("provider", "tier", "capabilities"), wide, width=width)
    for spec, row in zip(specs, table.rows, strict=True):
        row.style = None if spec.priced else "yellow"
    return table


def _csv(specs: list[ModelSpec]) -> str:
    """The catalog as CSV (prices as exact decimal strings, empty when unknown)."""
    import csv
    import io

    buffer = io.StringIO()
    fields = list(spec_dict(specs[0]) if specs else ("name",))
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(fields)
    for spec in specs:
        data = spec_dict(spec)
        writer.writerow([";".join(v) if isinstance(v, list) else "" if v is None else v
                         for v in (data[f] for f in fields)])
    return buffer.getvalue()


def models(
    tier: str | None = typer.Option(None, "--tier", "-t", help="Only models of this tier."),
    all_models: bool = typer.Option(False, "--all", help="The whole bundled price snapshot, "
                                    "not only the models your tiers use."),
    search: str | None = typer.Option(None, "--search", "-s", help="Substring filter on names."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV instead of a table."),
    wide: bool = wide_option("provider, cached-input price, max output, capabilities; with "
                             "--abilities: known from, detail"),
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
            print_abilities(engine, policy, prompt,
                            "json" if as_json else "csv" if as_csv else "wide" if wide else "table")
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
    if as_csv:
        out.file.write(_csv(specs))
        return
    unpriced = sum(not spec.priced for spec in specs)
    title = f"{len(specs)} models" + (f" ({unpriced} unpriced)" if unpriced else "")
    print_table(_table(specs, title, wide, out.width), wide)
