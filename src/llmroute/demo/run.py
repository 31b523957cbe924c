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

from ..providers.replay import ReplayBook, load_records
from .config import demo_settings
from .summary import Summary, render, summarize
from .traffic import send_all


@dataclass(frozen=True)
class DemoOptions:
    """What the `llmroute demo` command asked for (requests None: every recorded prompt)."""

    requests: int | None = None
    concurrency: int = 16
    port: int = 0
    keep_serving: bool = False
    out: Path | None = None


def mean_outcomes(book: ReplayBook) -> dict[str, float]:
    """Each model's mean recorded outcome over the records."""
    totals: dict[str, list[float]] = {}
    for record in book.records:
        for model, entry in record["models"].items():
            if entry.get("outcome") is not None:
                totals.setdefault(model, []).append(float(entry["outcome"]))
    return {model: sum(v) / len(v) for model, v in totals.items()}


async def _start(settings: Any) -> tuple[Any, asyncio.Task[None], str]:
    import uvicorn

    from ..server.app import create_app

    config = uvicorn.Config(create_app(settings, environ={}), host=settings.server.host,
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
    settings = demo_settings(out.resolve(), mean_outcomes(book), options.port)
    server, task, url = await _start(settings)
    started = time.monotonic()
    try:
        sent = await send_all(url, book, records, options.concurrency, console)
    finally:
        if not options.keep_serving:
            server.should_exit = True
            await task
    elapsed = time.monotonic() - started
    summary = summarize(out / "ledger.db", sent, book)
    console.print(f"replayed {len(sent)} prompts in {elapsed:.1f}s; ledger: {out / 'ledger.db'}")
    render(summary, console)
    data = {**asdict(summary), "savings_pct": summary.savings_pct, "seconds": elapsed,
            "quality_kept_pct": summary.quality_kept_pct, "ledger": str(out / "ledger.db")}
    (out / "summary.json").write_text(json.dumps(data, default=str, indent=2), "utf-8")
    if options.keep_serving:
        console.print(f"gateway still serving on {url}/v1 (Ctrl-C to stop)")
        await task
    return summary


def run_demo(options: DemoOptions, console: Console | None = None) -> Summary:
    """Run the demo to completion (or until Ctrl-C with `keep_serving`)."""
    return asyncio.run(run_async(options, console or Console()))
