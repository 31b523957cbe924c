"""Run the demo: start the gateway in-process (uvicorn on 127.0.0.1), replay the prompts through it,
print the summary from the ledger, and optionally keep serving."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from ..errors import ConfigError, ConfigProblem
from ..providers.replay import ReplayBook, load_records
from ..reports.plane import LabFrontier
from .config import BASELINE, BUDGET_USER, EXPERIMENT, control_section, demo_settings
from .frontier import lab_frontier
from .summary import Summary, render, render_budget, render_plane, summarize
from .traffic import Caller, send_all

#: The control demo: prompts sent in all, the last of them by the budget user, and the budget
#: (this share of what always-gpt-4 would cost on the budget user's prompts).
CONTROL_PROMPTS = 480
BUDGET_PROMPTS = 80
BUDGET_SHARE = 0.03


@dataclass(frozen=True)
class DemoOptions:
    """What the `llmroute demo` command asked for (requests None: every recorded prompt)."""

    requests: int | None = None
    concurrency: int = 16
    port: int = 0
    keep_serving: bool = False
    out: Path | None = None
    control: bool = False
    #: A config laid over the demo's settings (`llmroute demo -c`).
    config: Path | None = None


def config_over(path: Path | None) -> dict[str, Any]:
    """The sections of the config at `path` (none: {}); a ConfigError when it does not read."""
    if path is None:
        return {}
    from ..config_text import parse_yaml

    try:
        return parse_yaml(path.read_text("utf-8"), str(path))
    except (OSError, ValueError) as exc:
        message = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise ConfigError([ConfigProblem("", f"cannot read it: {message}")], str(path)) from None


def write_ledger_config(out: Path) -> Path:
    """`llmroute.yaml` beside the demo's ledger, naming it: `llmroute report -c` reads it."""
    config = out / "llmroute.yaml"
    url = f"sqlite:///{(out / 'ledger.db').resolve()}"
    config.write_text(json.dumps({"ledger": {"url": url}}, indent=2) + "\n", "utf-8")
    return config


def mean_outcomes(book: ReplayBook) -> dict[str, float]:
    """Each model's mean recorded outcome over the records."""
    totals: dict[str, list[float]] = {}
    for record in book.records:
        for model, entry in record["models"].items():
            if entry.get("outcome") is not None:
                totals.setdefault(model, []).append(float(entry["outcome"]))
    return {model: sum(v) / len(v) for model, v in totals.items()}


async def _start(settings: Any, frontier: LabFrontier | None = None
                 ) -> tuple[Any, asyncio.Task[None], str]:
    import uvicorn

    from ..server.app import create_app

    app = create_app(settings, environ={})
    app.state.frontier = frontier  # the dashboard plots the lab's points beside the ledger's
    config = uvicorn.Config(app, host=settings.server.host,
                            port=settings.server.port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises why it could not start
            raise RuntimeError("the gateway stopped before it started")
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, task, f"http://{settings.server.host}:{port}"


async def run_async(options: DemoOptions, console: Console) -> Summary:
    """The whole demo; returns the summary it printed."""
    out = options.out or Path(tempfile.mkdtemp(prefix="llmroute-demo-"))
    out.mkdir(parents=True, exist_ok=True)
    book = ReplayBook(load_records())
    records = book.records[: options.requests] if options.requests else book.records
    settings = demo_settings(out.resolve(), mean_outcomes(book), options.port,
                             over=config_over(options.config))
    policy = settings.routing.default_policy
    frontier = lab_frontier(settings, records, policy, BASELINE)
    server, task, url = await _start(settings, frontier)
    started = time.monotonic()
    try:
        sent = await send_all(url, book, records, options.concurrency, console)
    finally:
        if not options.keep_serving:
            server.should_exit = True
            await task
    elapsed = time.monotonic() - started
    summary = summarize(out / "ledger.db", sent, book)
    config = write_ledger_config(out)
    console.print(f"replayed {len(sent)} prompts in {elapsed:.1f}s; ledger: {out / 'ledger.db'}")
    render(summary, console)
    frontier.save(out / "frontier.json")
    render_plane(summary, frontier, policy, console)
    console.print(f"cost–quality points: {out / 'frontier.json'} (`llmroute report --frontier`)")
    console.print(f"report over this ledger: llmroute report -c {config}", markup=False,
                  soft_wrap=True)
    data = {**asdict(summary), "savings_pct": summary.savings_pct, "seconds": elapsed,
            "quality_kept_pct": summary.quality_kept_pct, "ledger": str(out / "ledger.db"),
            "frontier": str(out / "frontier.json")}
    (out / "summary.json").write_text(json.dumps(data, default=str, indent=2), "utf-8")
    if options.keep_serving:
        console.print(f"gateway still serving on {url}/v1 (Ctrl-C to stop)")
        await task
    return summary


async def run_control(options: DemoOptions, console: Console) -> Summary:
    """The control demo: an experiment (default vs learned, 50/50 by session, `cheap` in the
    shadow) over most prompts, and a daily budget that downgrades the budget user's last ones.
    Writes `llmroute.yaml` beside the ledger for `llmroute experiments report demo-ab`."""
    out = options.out or Path(tempfile.mkdtemp(prefix="llmroute-demo-control-"))
    out.mkdir(parents=True, exist_ok=True)
    book = ReplayBook(load_records())
    records = book.records[: options.requests or CONTROL_PROMPTS]
    split = max(0, len(records) - BUDGET_PROMPTS)
    budgeted = records[split:]
    found = (book.find(str(r["prompt"]), BASELINE) for r in budgeted)
    budget = f"{sum(f.cost_usd or 0.0 for f in found if f is not None) * BUDGET_SHARE:.6f}"
    settings = demo_settings(out.resolve(), mean_outcomes(book), options.port,
                             control_section(budget), config_over(options.config))
    ledger_url = f"sqlite:///{(out / 'ledger.db').resolve()}"
    (out / "llmroute.yaml").write_text(
        json.dumps({"ledger": {"url": ledger_url}, "experiments": [EXPERIMENT]}, indent=2), "utf-8")
    callers = [Caller(session=f"session-{i % 60}") for i in range(split)]
    callers += [Caller(user=BUDGET_USER)] * len(budgeted)
    server, task, url = await _start(settings)
    try:
        sent = await send_all(url, book, records, options.concurrency, console, callers)
    finally:
        server.should_exit = True
        await task
    summary = summarize(out / "ledger.db", sent, book)
    render(summary, console)
    render_budget(out / "ledger.db", sent[split:], budget, console)
    console.print(f"experiment demo-ab over {split} prompts; its report:")
    console.print(f"llmroute experiments report demo-ab -c {out / 'llmroute.yaml'}", markup=False,
                  soft_wrap=True)
    return summary


def run_demo(options: DemoOptions, console: Console | None = None) -> Summary:
    """Run the demo to completion (or until Ctrl-C with `keep_serving`)."""
    shown = console or Console()
    return asyncio.run(run_control(options, shown) if options.control else
                       run_async(options, shown))
