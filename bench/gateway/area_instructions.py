"""Instructions per call of each part of a request's path outside the routing decision and the
ledger writer (issue 17), counted by valgrind (callgrind) on the real objects of one request, so
that a cut in one part shows as that part's count, not as noise in the whole path's.

    .venv/bin/python bench/gateway/area_instructions.py --trees /tmp/base/src,src [--calls 2000]
        [--areas validation,auth,entry,metrics,accounting,response]

For each area and tree, a child runs under `valgrind --tool=callgrind --instr-atstart=no` with
PYTHONPATH set to the tree: it builds the app (`instructions.py --asgi`'s config: the default
cascade policy, SQLite ledger, metrics) against the fast upstream, answers one request through
`Gateway.complete` to get its request, principal, outcome and answer, then counts `--calls` calls
of the area's work:

- validation: the body parsed and validated, the control headers read (`parse_json`,
  `chat_request`, `with_headers`, with `lowered=True` where the tree has it, as its hot route);
- auth: the headers as a dict and the key's principal (`request_headers`, `KeyRing.authenticate`);
- entry: the ledger entry (`Accountant.entry`: what the gateway hands the writer);
- metrics: `GatewayMetrics.observe` of that entry;
- accounting: usage and cost of the answer (`usage_of`, `Gateway._finish` on a copy);
- response: the answer's headers and body sent (`Outcome.headers`, `encode_headers` or, where
  the tree has it, `outcome_head`,
  `orjson.dumps`, `send_json` to a no-op `send`).

The whole path's count is `instructions.py --asgi`. Needs valgrind; a run takes ~20 s per area and
tree.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: the shared callgrind helper
import callgrind

HERE = Path(__file__).resolve().parent
AREAS = ("validation", "auth", "entry", "metrics", "accounting", "response")
RAW = (b'{"model": "auto", "messages": [{"role": "user", "content": "What is 2+2?"}], '
       b'"max_tokens": 32}')


def child(up_port: int, calls: int, signals: Path, area: str) -> None:
    """The counted process: one real request, then `calls` calls of the area's work."""
    sys.path.insert(0, str(HERE))
    import orjson
    import peers

    from llmroute.chat import ChatRequest, chat_request, parse_json, with_headers
    from llmroute.config import load
    from llmroute.metrics import GatewayMetrics
    from llmroute.outcome import usage_of
    from llmroute.server.app import create_app
    from llmroute.server.asgi import encode_headers, request_headers, send_json

    try:  # the hot route's head as the tree builds it (cut17: bytes directly)
        from llmroute.server.asgi import outcome_head  # type: ignore[attr-defined]
    except ImportError:
        def outcome_head(outcome: Any) -> Any:
            return encode_headers(outcome.headers())

    work = Path(tempfile.mkdtemp(prefix="llmroute-area-"))
    (work / "llmroute.yaml").write_text(peers.LLMROUTE_YAML.format(upstream_port=up_port, work=work))
    env = {"BENCH_UPSTREAM_KEY": "dummy", "BENCH_GATEWAY_KEY": "k" * 32}
    app = create_app(load(work / "llmroute.yaml", environ=env), environ=env)
    gw, keys = app.state.gateway, app.state.keys
    scope = {"headers": [(b"host", b"gw"), (b"content-type", b"application/json"),
                         (b"content-length", b"%d" % len(RAW)),
                         (b"authorization", b"Bearer " + b"k" * 32)]}
    headers = request_headers(scope)
    principal = keys.authenticate(headers)

    async def sent(message: Any) -> None:
        del message

    # as the tree's hot route calls it: lower-case names looked up where `lowered` exists
    hot_style = {"lowered": True} if "lowered" in inspect.signature(with_headers).parameters else {}

    def validate() -> ChatRequest:
        return with_headers(chat_request(parse_json(RAW)), headers, **hot_style)

    async def run() -> None:
        async with app.router.lifespan_context(app):
            req = validate()
            response, outcome = await gw.complete(req, principal)
            entry = gw.accountant.entry(request_id=outcome.request_id, started=0.0, now=0.1,
                                        outcome=outcome, error=None, body=req.body,
                                        key_name=principal.name, stream=False)
            metrics = GatewayMetrics()

            def finish() -> None:
                copy = orjson.loads(orjson.dumps(response))
                gw._finish(outcome, usage_of(copy), copy)

            async def respond() -> None:
                body = orjson.dumps(response)
                await send_json(sent, 200, body, outcome_head(outcome))

            work_of: dict[str, Callable[[], object]] = {
                "validation": validate,
                "auth": lambda: keys.authenticate(request_headers(scope)),
                "entry": lambda: gw.accountant.entry(
                    request_id=outcome.request_id, started=0.0, now=0.1, outcome=outcome,
                    error=None, body=req.body, key_name=principal.name, stream=False),
                "metrics": lambda: metrics.observe(entry),
                "accounting": finish,
            }
            for _ in range(100):  # warm-up
                await respond() if area == "response" else work_of[area]()
            (signals / "ready").touch()
            callgrind.wait_for(signals / "go")
            if area == "response":
                for _ in range(calls):
                    await respond()
            else:
                one = work_of[area]
                for _ in range(calls):
                    one()
            (signals / "done").touch()
            callgrind.wait_for(signals / "stop")
        shutil.rmtree(work, ignore_errors=True)

    asyncio.run(run())


def count_area(tree: Path, up_port: int, calls: int, area: str) -> float:
    """Instructions per call of `area`'s work with `tree` first on PYTHONPATH (valgrind needed)."""
    return float(callgrind.count(__file__, [str(up_port), str(calls), area], tree,
                                 "llmroute-area-signals-")) / calls


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]), sys.argv[5])
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trees", required=True, help="comma-separated src directories (the first is A)")
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--areas", default=",".join(AREAS))
    args = p.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not installed: apt-get install -y valgrind")
    sys.path.insert(0, str(HERE))
    import peers
    import procs

    trees = [Path(t).resolve() for t in args.trees.split(",")]
    work = Path(tempfile.mkdtemp(prefix="llmroute-area-up-"))
    up_port = procs.free_port()
    up = peers.launch_upstream(up_port, 0, work, 1)
    upstream = procs.start_server("upstream", up.argv, cpus=None, env=up.env, log_dir=work)
    try:
        procs.wait_http(up.ready_url, upstream, up.ready_timeout_s)
        print("| area | " + " | ".join(str(t) for t in trees) + " |", flush=True)
        for area in args.areas.split(","):
            counts = [count_area(tree, up_port, args.calls, area) for tree in trees]
            cells = [f"{c / 1000:.1f} k ({c / counts[0]:.2f})" for c in counts]
            print(f"| {area} | " + " | ".join(cells) + " |", flush=True)
    finally:
        upstream.stop()


if __name__ == "__main__":
    main()
