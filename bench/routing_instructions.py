"""Instructions per routing decision (the `default` policy's `decide`: the cascade with the learned
classifier), counted by valgrind's callgrind: a load-independent A/B of the decision alone, next to
`bench_routing.py`'s wall-clock times (noise on a busy machine).

    .venv/bin/python bench/routing_instructions.py --trees /tmp/base/src,src [--decisions 300]

For each round, prompt and tree (interleaved), a child runs under `valgrind --tool=callgrind
--instr-atstart=no` with PYTHONPATH set to the tree: it builds the engine from the default config
(as `bench_routing.py` does), warms up with 100 decisions, then `--decisions` decisions are counted
(instrumentation switched on and off around them with `callgrind_control`). Needs valgrind.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import callgrind  # bench/callgrind.py: this script's directory is on sys.path

HERE = Path(__file__).resolve().parent
CASES = ("short", "2000")


def child(case: str, decisions: int, signals: Path) -> None:
    """The counted process: build, warm up, say so, decide when told, say so."""
    sys.path.insert(0, str(HERE))
    from bench_routing import long_prompt

    import llmroute
    from llmroute.engine import Engine
    from llmroute.types import RouteRequest

    engine = Engine(llmroute.config.load(environ={}))
    prompt = "Translate 'good morning' into French, please." if case == "short" else long_prompt(2000)
    request = RouteRequest.from_prompt(prompt)
    found = engine.candidates(request)
    router = engine.policies["default"]
    for _ in range(100):
        router.decide(request, found)
    (signals / "ready").touch()
    callgrind.wait_for(signals / "go")
    for _ in range(decisions):
        router.decide(request, found)
    (signals / "done").touch()


def count(tree: Path, case: str, decisions: int) -> int:
    """Instructions the child executed over `decisions` decisions."""
    return callgrind.count(__file__, [case, str(decisions)], tree, "llmroute-route-instr-")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trees", required=True, help="comma-separated src directories (the first is A)")
    p.add_argument("--decisions", type=int, default=300)
    p.add_argument("--rounds", type=int, default=1)
    args = p.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not installed: apt-get install -y valgrind")
    trees = [Path(t).resolve() for t in args.trees.split(",")]
    counts: dict[tuple[Path, str], list[float]] = {(t, c): [] for t in trees for c in CASES}
    for r in range(args.rounds):
        for case in CASES:
            for tree in trees if r % 2 == 0 else list(reversed(trees)):
                per = count(tree, case, args.decisions) / args.decisions
                counts[(tree, case)].append(per)
                print(f"round {r + 1} {case} {tree}: {per / 1e3:.1f} k instructions per decision",
                      flush=True)
    for case in CASES:
        base = sum(counts[(trees[0], case)]) / len(counts[(trees[0], case)])
        for tree in trees:
            values = counts[(tree, case)]
            mean = sum(values) / len(values)
            print(f"mean {case} {tree}: {mean / 1e3:.1f} k instructions per decision "
                  f"({mean / base:.3f} of A)")


if __name__ == "__main__":
    main()
