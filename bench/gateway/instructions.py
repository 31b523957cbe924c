"""Instructions per request of the gateway's own path, counted by valgrind (callgrind): a count that
other processes' load does not change, for A/B comparisons on a busy machine where CPU time is noise.

    .venv/bin/python bench/gateway/instructions.py --trees /work/main/src,src [--requests 200]
        [--rounds 2] [--asgi]
    .venv/bin/python bench/gateway/instructions.py --trees src:inline,src:process   # ledger.writes
    .venv/bin/python bench/gateway/instructions.py --trees /work/main/src:held,src:held

`:held` holds the ledger's batches until the end (batch_size 100000, flush_interval_s 3600): the
count is then the request path alone. Otherwise the writer's batches are counted too, and how many
there are depends on wall-clock time (a batch goes every flush_interval_s), so the count of one side
moves by up to ~10% between runs.

For each round and tree (interleaved), a child runs under `valgrind --tool=callgrind
--instr-atstart=no` with PYTHONPATH set to the tree: it builds the `llmroute` row's gateway in
process (bench config: the default cascade policy with the classifier, SQLite ledger, metrics; no
HTTP server), warms up with 100 requests against the fast upstream, then counts `--requests` calls
of `Gateway.complete` (instrumentation switched on and off around them with `callgrind_control`).
The serving process is counted (every thread, the ledger writer's included), not the upstream nor
a `ledger.writes: process` child. `--asgi` drives the app's hot endpoint instead (`POST
/v1/chat/completions` called as ASGI, no server or sockets: request id, auth, body, validation,
the gateway, the answer's headers and body); the warm-up and the count are the same. Needs
valgrind (`apt-get install -y valgrind`); each run takes minutes (valgrind is ~50x slower once
counting).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: the shared callgrind helper
import callgrind

HERE = Path(__file__).resolve().parent
WARMUP = 100


def asgi_caller(settings: Any, env: dict[str, str], body: dict[str, Any]
                ) -> tuple[Any, Callable[[], Awaitable[None]]]:
    """The app, and one call of its chat endpoint through ASGI (the answer's status checked)."""
    from llmroute.server.app import create_app

    app = create_app(settings, environ=env)
    raw = json.dumps(body).encode()
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions",
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 9),
             "server": ("127.0.0.1", 80),
             "headers": [(b"host", b"gw"), (b"content-type", b"application/json"),
                         (b"content-length", b"%d" % len(raw)),
                         (b"authorization", f"Bearer {env['BENCH_GATEWAY_KEY']}".encode())]}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise SystemExit(f"the gateway answered {message['status']}")

    async def call() -> None:
        await app(dict(scope), receive, send)

    return app, call


def child(up_port: int, requests: int, signals: Path, writes: str | None, asgi: bool) -> None:
    """The counted process: warm up, say so, run the requests when told, say so, wait to exit."""
    sys.path.insert(0, str(HERE))
    import peers

    from llmroute.chat import chat_request
    from llmroute.config import load
    from llmroute.runtime import build_runtime

    work = Path(tempfile.mkdtemp(prefix="llmroute-instr-"))
    text = peers.LLMROUTE_YAML.format(upstream_port=up_port, work=work)
    spool = f"  spool_path: {work}/ledger.spool.jsonl\n"
    if writes == "held":  # the writer writes nothing until it closes: the request path alone
        text = text.replace(spool, spool + "  batch_size: 100000\n  flush_interval_s: 3600\n")
    elif writes is not None:
        text = text.replace(spool, spool + f"  writes: {writes}\n")
    (work / "llmroute.yaml").write_text(text)
    env = {"BENCH_UPSTREAM_KEY": "dummy", "BENCH_GATEWAY_KEY": "k" * 32}
    settings = load(work / "llmroute.yaml", environ=env)
    body = {"model": "auto", "messages": [{"role": "user", "content": "What is 2+2?"}],
            "max_tokens": 32}

    async def counted(one: Callable[[], Awaitable[object]]) -> None:
        for _ in range(WARMUP):
            await one()
        await asyncio.sleep(1.0)  # the writer flushes the warm-up
        (signals / "ready").touch()
        callgrind.wait_for(signals / "go")
        for _ in range(requests):
            await one()
        (signals / "done").touch()
        callgrind.wait_for(signals / "stop")

    async def run() -> None:
        if asgi:
            app, call = asgi_caller(settings, env, body)
            async with app.router.lifespan_context(app):
                await counted(call)
        else:
            runtime = build_runtime(settings, environ=env)
            await runtime.start()
            await counted(lambda: runtime.gateway.complete(chat_request(dict(body))))
            await runtime.aclose()
        shutil.rmtree(work, ignore_errors=True)

    asyncio.run(run())


def count(tree: Path, writes: str | None, up_port: int, args: argparse.Namespace) -> int:
    """Instructions the serving process executed over `args.requests` requests."""
    extra = [writes or "-", "asgi"] if args.asgi else [writes] if writes else []
    return callgrind.count(__file__, [str(up_port), str(args.requests), *extra], tree,
                           "llmroute-instr-signals-")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        port, requests, signals = int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
        writes = sys.argv[5] if len(sys.argv) > 5 and sys.argv[5] != "-" else None
        child(port, requests, signals, writes, "asgi" in sys.argv[6:])
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trees", required=True, help="comma-separated src directories (the first is A), "
                                                  "each optionally with :inline or :process (ledger.writes) "
                                                  "or :held (no batch written while counting)")
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--asgi", action="store_true",
                   help="count the app's hot endpoint (ASGI, no server) instead of Gateway.complete")
    args = p.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not installed: apt-get install -y valgrind")
    sys.path.insert(0, str(HERE))
    import peers
    import procs

    sides = [_side(t) for t in args.trees.split(",")]
    work = Path(tempfile.mkdtemp(prefix="llmroute-instr-up-"))
    up_port = procs.free_port()
    up = peers.launch_upstream(up_port, 0, work, 1)
    upstream = procs.start_server("upstream", up.argv, cpus=None, env=up.env, log_dir=work)
    counts: dict[tuple[Path, str | None], list[float]] = {side: [] for side in sides}
    try:
        procs.wait_http(up.ready_url, upstream, up.ready_timeout_s)
        for r in range(args.rounds):
            for side in sides if r % 2 == 0 else list(reversed(sides)):
                per = count(*side, up_port, args) / args.requests
                counts[side].append(per)
                print(f"round {r + 1} {_name(side)}: {per / 1e6:.3f} M instructions per request",
                      flush=True)
    finally:
        upstream.stop()
    base = sum(counts[sides[0]]) / len(counts[sides[0]])
    for side, values in counts.items():
        mean = sum(values) / len(values)
        print(f"mean {_name(side)}: {mean / 1e6:.3f} M instructions per request ({mean / base:.3f} of A)")


def _side(text: str) -> tuple[Path, str | None]:
    path, _, writes = text.rpartition(":")
    if path and writes in ("inline", "process", "held"):
        return Path(path).resolve(), writes
    return Path(text).resolve(), None


def _name(side: tuple[Path, str | None]) -> str:
    return f"{side[0]}" + (f" (writes {side[1]})" if side[1] else "")


if __name__ == "__main__":
    main()
