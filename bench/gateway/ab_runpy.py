"""A/B of llmroute source trees through the gateway harness: `run.py --only llmroute` once per tree
per round, interleaved (A B A B ...), then the median CPU ms per request (and streams' CPU per
stream, TTFT p50) per scenario and tree.

Run: ``.venv/bin/python bench/gateway/ab_runpy.py main=/work/main/src branch=src [--rounds 3]
[-- extra run.py arguments]``. Each tree is put first on the serve process's PYTHONPATH (a tree
given as ``path:extra`` adds more entries); the harness's own arguments default to
``--quick --delays 0 --concurrency 16,64 --retry-disturbed 0 --no-install``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
DEFAULT = ["--quick", "--delays", "0", "--concurrency", "16,64", "--retry-disturbed", "0",
           "--no-install"]


def one_run(path: str, extra: list[str], out: Path) -> list[dict[str, object]]:
    env = {**os.environ, "PYTHONPATH": path}
    check = subprocess.run([sys.executable, "-c", "import llmroute; print(llmroute.__file__)"],
                           env=env, capture_output=True, text=True, check=True)
    print(f"  {path.split(':')[0]} -> imports {check.stdout.strip()}", flush=True)
    subprocess.run([sys.executable, str(HERE / "run.py"), "--only", "llmroute", *extra,
                    "--json", str(out)], env=env, check=True, stdout=subprocess.DEVNULL)
    rows: list[dict[str, object]] = json.loads(out.read_text())["rows"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("trees", nargs="+", help="label=PYTHONPATH")
    parser.add_argument("--rounds", type=int, default=3)
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"] or DEFAULT
    trees = dict(tree.split("=", 1) for tree in args.trees)
    seen: dict[tuple[str, str], list[dict[str, object]]] = {}
    with tempfile.TemporaryDirectory() as work:
        for round_ in range(args.rounds):
            for label, path in trees.items():
                print(f"round {round_ + 1}: {label}", flush=True)
                for row in one_run(path, extra, Path(work) / f"{label}-{round_}.json"):
                    seen.setdefault((str(row["scenario"]), label), []).append(row)
    print(f"{'scenario':14} {'tree':10} {'CPU ms/req':>10} {'req/s':>8} {'p50 ms':>8} "
          f"{'foreign':>8}  (medians of {args.rounds})")
    for (scenario, label), rows in sorted(seen.items()):
        def med(key: str, rows: list[dict[str, object]] = rows) -> float:
            values = [float(str(r[key])) for r in rows if r.get(key) is not None]
            return statistics.median(values) if values else float("nan")
        print(f"{scenario:14} {label:10} {med('cpu_ms_per_req'):10.3f} {med('rps'):8.0f} "
              f"{med('p50_ms'):8.2f} {med('foreign_cores'):8.2f}")


if __name__ == "__main__":
    main()
