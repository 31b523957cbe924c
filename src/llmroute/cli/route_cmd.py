"""`llmroute route`: show the routing decision for one prompt, or route a JSONL file in batch."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..engine import Engine
from ..errors import LLMRouteError
from ..types import Decision, RouteRequest
from .common import EXIT_ERROR, engine_from, err, friendly_errors, out, usd


def _request(record: Mapping[str, Any], defaults: Mapping[str, Any]) -> RouteRequest:
    """A RouteRequest from one JSONL record (`prompt` or `messages`, plus optional constraints)."""
    options = {**defaults, **{k: record[k] for k in ("allowed_models", "excluded_models", "tools",
                                                      "response_format") if k in record}}
    max_tokens = record.get("max_tokens", record.get("max_completion_tokens"))
    if max_tokens is not None:
        options["max_output_tokens"] = max_tokens
    if isinstance(record.get("messages"), list):
        return RouteRequest.from_messages(record["messages"], **options)
    if isinstance(record.get("prompt"), str):
        return RouteRequest.from_prompt(record["prompt"], **options)
    raise ValueError("each line needs a string `prompt` or a list `messages`")


def _print_decision(d: Decision) -> None:
    out.print(f"[bold]tier[/]        {d.tier}   [dim](policy {d.policy}, router {d.router}, "
              f"confidence {d.confidence:.2f})[/]")
    out.print(f"[bold]model chain[/] {' → '.join(d.chain)}")
    out.print(f"[bold]reason[/]      {d.reason}")
    line = f"[bold]est. cost[/]   {usd(d.estimated_cost_usd)} (~{d.input_tokens} prompt tokens)"
    line += f"   baseline {d.baseline_model}: {usd(d.baseline_cost_usd)}"
    saved = d.estimated_savings_usd
    if saved is not None and d.baseline_cost_usd:
        line += f"   [green]saves {saved / d.baseline_cost_usd:.0%}[/]"
    out.print(line)
    for model, why in d.excluded.items():
        out.print(f"[dim]excluded    {model}: {why}[/]")


def _read_records(stream: TextIO) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, record) per non-blank line; a string instead of a record explains a bad line."""
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, f"invalid JSON: {exc.msg}"
            continue
        yield number, record if isinstance(record, dict) else "each line must be a JSON object"


async def _route_one(engine: Engine, number: int, record: dict[str, Any] | str,
                     policy: str | None, defaults: Mapping[str, Any]) -> dict[str, Any]:
    ident = record.get("id", number) if isinstance(record, dict) else number
    try:
        if isinstance(record, str):
            raise ValueError(record)
        decision = await engine.decide(_request(record, defaults), policy=policy)
    except (LLMRouteError, ValueError, TypeError) as exc:
        message = exc.message if isinstance(exc, LLMRouteError) else str(exc)
        return {"id": ident, "line": number, "error": message}
    return {"id": ident, **decision.to_dict()}


async def _route_batch(engine: Engine, source: Path, sink: TextIO, policy: str | None,
                       defaults: Mapping[str, Any]) -> Counter[str]:
    tally: Counter[str] = Counter()
    costs = {"estimated": Decimal(0), "baseline": Decimal(0)}
    with source.open(encoding="utf-8") as lines:
        total = sum(1 for line in lines if line.strip())
    columns = (TextColumn("routing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with source.open(encoding="utf-8") as stream, Progress(*columns, console=err) as bar:
        task = bar.add_task("route", total=total)
        for number, record in _read_records(stream):
            result = await _route_one(engine, number, record, policy, defaults)
            sink.write(json.dumps(result) + "\n")
            tally["error" if "error" in result else f"tier:{result['tier']}"] += 1
            for key in costs:
                value = result.get(f"{key}_cost_usd")
                costs[key] += Decimal(value) if value else 0
            bar.advance(task)
    tally["_estimated_micro"] = int(costs["estimated"] * 1_000_000)
    tally["_baseline_micro"] = int(costs["baseline"] * 1_000_000)
    return tally


def _print_summary(tally: Counter[str], output: Path | None) -> None:
    tiers = {k[5:]: v for k, v in tally.items() if k.startswith("tier:")}
    routed = sum(tiers.values())
    mix = ", ".join(f"{tier} {n} ({n / routed:.0%})" for tier, n in tiers.items()) if routed else ""
    est, base = tally["_estimated_micro"] / 1e6, tally["_baseline_micro"] / 1e6
    err.print(f"routed {routed} request(s){': ' + mix if mix else ''}"
              + (f"; {tally['error']} error(s)" if tally["error"] else ""))
    if base:
        err.print(f"estimated cost ${est:.4f} vs baseline ${base:.4f} (saves {1 - est / base:.0%})")
    if output:
        err.print(f"decisions written to {output}")


def route(
    prompt: str | None = typer.Argument(None, help="The prompt to route."),
    policy: str | None = typer.Option(None, "--policy", "-p", help="Named policy (default: "
                                      "routing.default_policy)."),
    as_json: bool = typer.Option(False, "--json", help="Print the decision as JSON."),
    input_file: Path | None = typer.Option(None, "--input", "-i", help="JSONL file: one "
                                           "{prompt | messages, ...} per line."),
    output_file: Path | None = typer.Option(None, "--output", "-o", help="Where batch decisions "
                                            "go (JSONL; default: stdout)."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", help="The request's max_tokens."),
    allowed: list[str] = typer.Option([], "--allow", help="allowed_models pattern (repeatable)."),
    excluded: list[str] = typer.Option([], "--exclude", help="excluded_models pattern "
                                       "(repeatable)."),
    config: Path | None = typer.Option(None, "--config", "-c", help="Config file."),
) -> None:
    """Show where a prompt would go, why, and what it would cost against the baseline model."""
    if (prompt is None) == (input_file is None):
        err.print("[red]error:[/] give either a PROMPT or --input FILE")
        raise typer.Exit(EXIT_ERROR)
    defaults: dict[str, Any] = {"allowed_models": allowed, "excluded_models": excluded}
    with friendly_errors():
        engine = engine_from(config)
        if input_file is not None:
            if not input_file.is_file():
                err.print(f"[red]error:[/] no such file: {input_file}")
                raise typer.Exit(EXIT_ERROR)
            sink = output_file.open("w", encoding="utf-8") if output_file else None
            try:
                tally = asyncio.run(_route_batch(engine, input_file, sink or typer.get_text_stream(
                    "stdout"), policy, defaults))
            finally:
                if sink:
                    sink.close()
            _print_summary(tally, output_file)
            raise typer.Exit(EXIT_ERROR if tally["error"] else 0)
        assert prompt is not None
        request = RouteRequest.from_prompt(prompt, max_output_tokens=max_tokens, **defaults)
        decision = asyncio.run(engine.decide(request, policy=policy))
    if as_json:
        out.print_json(json.dumps(decision.to_dict()))
    else:
        _print_decision(decision)
