"""Instructions per request of each part of llmroute's own work (issue 17), as one JSON file that
`run.py --targets --profile FILE` folds into the verdict: which parts a miss in CPU is made of.

    PYTHONPATH=src .venv/bin/python bench/gateway/profile_parts.py --tree src --out out/parts.json \\
        [--requests 200] [--calls 1000] [--decisions 300] [--entries 2048]

It runs the existing callgrind counts (valgrind; each counted child is its script's own `--child`),
one tree, one round each (~5–10 minutes on the 2-core VM):

- path: `instructions.py --asgi` with the ledger's batches held (`:held`): the hot endpoint called
  as ASGI in process (request id, auth, body, validation, the gateway with its upstream call through
  llmroute's client, the answer), per request; no HTTP server, no ledger batch;
- ledger row+write: `bench/ledger/writer_instructions.py`, inline, full batches of 256: `record`
  (the WAL line) and the batch's rows, rollups and SQLite insert, per entry;
- decision: `bench/routing_instructions.py`'s short prompt: the default policy's `decide`;
- validation, auth, entry, metrics, accounting, response: `area_instructions.py`, per call.

Own work in instructions = path + ledger row+write; "orchestration/other" = path minus the parts
counted inside it. Two overlaps are left in "other" and said so: `LedgerWriter.record` (counted in
the ledger part too) and the upstream client (which the `floor` row's CPU counts too). Shares are
shares of instructions, not of CPU time: the kernel's work (socket writes, fsync) is not counted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

LEDGER = "ledger row+write"
DECISION = "decision"
AREAS = ("validation", "auth", "entry", "metrics", "accounting", "response")
OTHER = "orchestration/other"
OTHER_NOTE = ("the rest of the hot endpoint's count: the orchestration around the upstream call, the "
              "upstream client (also in the floor's CPU) and `LedgerWriter.record` (also in the ledger part)")


@dataclass(frozen=True)
class Profile:
    """Instructions per request: the hot endpoint's path (batches held) and the parts measured alone."""

    path: float
    parts: dict[str, float]
    meta: dict[str, object] = field(default_factory=dict)

    @property
    def own(self) -> float:
        """llmroute's own instructions per request: the path plus the ledger's batch work."""
        return self.path + self.parts.get(LEDGER, 0.0)

    def shares(self) -> list[tuple[str, float, float]]:
        """(part, instructions, share of own), largest first, with "orchestration/other" (the path
        minus the parts inside it; never below 0) among them."""
        inside = sum(v for k, v in self.parts.items() if k != LEDGER)
        items = [*self.parts.items(), (OTHER, max(self.path - inside, 0.0))]
        total = self.own
        return sorted(((k, v, v / total if total > 0 else 0.0) for k, v in items),
                      key=lambda kv: kv[1], reverse=True)


def needed_parts(profile: Profile, factor: float) -> tuple[float, list[tuple[str, float]]]:
    """The cut (1 − factor of own work) and the fewest largest parts whose shares reach it (all parts,
    if even they do not); shares of instructions, taken as shares of CPU."""
    cut = 1.0 - max(factor, 0.0)
    chosen: list[tuple[str, float]] = []
    reached = 0.0
    for name, _, share in profile.shares():
        if reached >= cut:
            break
        chosen.append((name, share))
        reached += share
    return cut, chosen


def from_json(data: dict[str, object]) -> Profile:
    path, parts, meta = data.get("path"), data.get("parts"), data.get("meta")
    if not isinstance(path, int | float) or not isinstance(parts, dict):
        raise ValueError("a parts profile needs a number `path` and an object `parts`")
    return Profile(float(path), {str(k): float(v) for k, v in parts.items()},
                   meta if isinstance(meta, dict) else {})


def load(path: Path) -> Profile:
    loaded = json.loads(path.read_text())
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: not a parts profile")
    return from_json(loaded)


def measure(tree: Path, args: argparse.Namespace) -> Profile:
    """Run the callgrind counts on one tree (valgrind needed)."""
    here = Path(__file__).resolve().parent
    for extra in (here.parent, here.parent / "ledger", here):
        sys.path.insert(0, str(extra))
    import area_instructions
    import instructions
    import peers
    import procs
    import routing_instructions
    import writer_instructions

    parts: dict[str, float] = {}
    parts[LEDGER] = writer_instructions.count_per_entry(tree, "inline", args.entries,
                                                        writer_instructions.BATCH)
    print(f"{LEDGER}: {parts[LEDGER] / 1e3:.1f} k", flush=True)
    parts[DECISION] = routing_instructions.count(tree, "short", args.decisions) / args.decisions
    print(f"{DECISION}: {parts[DECISION] / 1e3:.1f} k", flush=True)
    work = Path(tempfile.mkdtemp(prefix="llmroute-parts-up-"))
    up_port = procs.free_port()
    up = peers.launch_upstream(up_port, 0, work, 1)
    upstream = procs.start_server("upstream", up.argv, cpus=None, env=up.env, log_dir=work)
    try:
        procs.wait_http(up.ready_url, upstream, up.ready_timeout_s)
        for area in AREAS:
            parts[area] = area_instructions.count_area(tree, up_port, args.calls, area)
            print(f"{area}: {parts[area] / 1e3:.1f} k", flush=True)
        ns = argparse.Namespace(requests=args.requests, asgi=True)
        path = instructions.count(tree, "held", up_port, ns) / args.requests
        print(f"path: {path / 1e3:.1f} k", flush=True)
    finally:
        upstream.stop()
    meta: dict[str, object] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "tree": str(tree),
        "command": " ".join([sys.executable, *sys.argv]), "unit": "instructions per request (callgrind)",
        "counts": {"requests": args.requests, "calls": args.calls, "decisions": args.decisions,
                   "entries": args.entries}}
    return Profile(path, parts, meta)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tree", default="src", help="the src directory to count")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--calls", type=int, default=1000)
    p.add_argument("--decisions", type=int, default=300)
    p.add_argument("--entries", type=int, default=2048)
    args = p.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not installed: apt-get install -y valgrind")
    profile = measure(Path(args.tree).resolve(), args)
    args.out.write_text(json.dumps({"meta": profile.meta, "path": profile.path, "parts": profile.parts},
                                   indent=2))
    for name, value, share in profile.shares():
        print(f"{name}: {value / 1e3:.1f} k instructions per request, {share:.1%} of own")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
