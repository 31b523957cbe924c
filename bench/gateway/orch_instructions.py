"""Instructions per call of the orchestration around a routing decision (issue 17, `orch17`):
`Engine.finish` and its parts, and the planner's `RouteRequest`, counted by valgrind (callgrind)
on the real objects of one request of the bench config, base tree against this one.

    .venv/bin/python bench/gateway/orch_instructions.py --trees /tmp/base/src,src [--calls 2000]
        [--areas finish,chain,costs,route_request,plan]

- finish: `Engine.finish(verdict, policy, request, candidates)` (chain, costs, Decision);
- chain: `Engine.chain(verdict, candidates)`;
- costs: the two cost estimates `finish` makes (primary and baseline, `catalog.get` + `cost`);
- route_request: `Planner.route_request` (the RouteRequest routers see);
- plan: `await Planner.plan(request, principal)` (the whole decision as the gateway asks for it);
- admit: `await Gateway.admit(request, principal, rid)` (policy, plan, reservation; cut17).

Needs valgrind; a run takes ~20 s per area and tree.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: the shared callgrind helper
import callgrind

HERE = Path(__file__).resolve().parent
AREAS = ("finish", "chain", "costs", "route_request", "plan", "admit")


def child(calls: int, signals: Path, area: str) -> None:
    """The counted process: one decision's objects, then `calls` calls of the area's work."""
    sys.path.insert(0, str(HERE))
    import peers

    from llmroute.chat import chat_request
    from llmroute.config import load
    from llmroute.runtime import build_runtime

    work = Path(tempfile.mkdtemp(prefix="llmroute-orch-"))
    (work / "llmroute.yaml").write_text(peers.LLMROUTE_YAML.format(upstream_port=9, work=work))
    env = {"BENCH_UPSTREAM_KEY": "dummy", "BENCH_GATEWAY_KEY": "k" * 32}
    runtime = build_runtime(load(work / "llmroute.yaml", environ=env), environ=env)
    gw = runtime.gateway
    engine, planner, catalog = gw.engine, gw.planner, gw.catalog
    req = chat_request({"model": "auto", "max_tokens": 32,
                        "messages": [{"role": "user", "content": "What is 2+2?"}]})
    from llmroute.outcome import OPEN

    route = planner.route_request(req, OPEN)
    name, router = engine.router(None)
    found = engine.candidates(route)
    verdict = router.decide(route, found)
    from llmroute.routers.base import Verdict

    assert isinstance(verdict, Verdict), "the bench config's default policy needs no consultation"
    usage = engine.expected_usage(route)

    def costs() -> object:
        primary = catalog.get(engine.chain(verdict, found)[1][0])
        baseline = catalog.get(engine.baseline_model)
        return (None if primary is None else primary.cost(usage),
                None if baseline is None else baseline.cost(usage))

    work_of: dict[str, Callable[[], object]] = {
        "finish": lambda: engine.finish(verdict, name, route, found),
        "chain": lambda: engine.chain(verdict, found),
        "costs": costs,
        "route_request": lambda: planner.route_request(req, OPEN),
    }

    async def run() -> None:
        loop_once: Any = work_of.get(area)

        async def awaited() -> object:
            return await (gw.admit(req, OPEN, "r") if area == "admit" else planner.plan(req, OPEN))

        for _ in range(100):  # warm-up
            await awaited() if loop_once is None else loop_once()
        (signals / "ready").touch()
        callgrind.wait_for(signals / "go")
        if loop_once is None:
            for _ in range(calls):
                await awaited()
        else:
            for _ in range(calls):
                loop_once()
        (signals / "done").touch()
        callgrind.wait_for(signals / "stop")

    asyncio.run(run())
    shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(int(sys.argv[3]), Path(sys.argv[4]), sys.argv[5])
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trees", required=True, help="comma-separated src directories (the first is A)")
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--areas", default=",".join(AREAS))
    args = p.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not installed: apt-get install -y valgrind")
    trees = [Path(t).resolve() for t in args.trees.split(",")]
    print("| area | " + " | ".join(str(t) for t in trees) + " |", flush=True)
    for area in args.areas.split(","):
        counts = [callgrind.count(__file__, ["-", str(args.calls), area], tree,
                                  "llmroute-orch-signals-") / args.calls for tree in trees]
        cells = [f"{c / 1000:.1f} k ({c / counts[0]:.2f})" for c in counts]
        print(f"| {area} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
