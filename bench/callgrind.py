"""Counting the instructions a child process executes between two signals, with valgrind's callgrind
(load-independent: other processes' CPU does not change the count). Shared by
`bench/gateway/instructions.py` (a gateway request) and `bench/routing_instructions.py` (a routing
decision): each runs itself as the child, which touches `ready`, waits for `go`, does the counted
work, then touches `done`. With BENCH_CALLGRIND_KEEP=<folder> each run's callgrind out file is kept
there (named by prefix, tree and pid), to read with `callgrind_annotate --inclusive=yes`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def wait_for(path: Path, proc: subprocess.Popen[bytes] | None = None, timeout_s: float = 1800) -> None:
    """Block until `path` exists; stop when `proc` exits first or the timeout passes."""
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"the counted process exited early ({proc.returncode})")
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {path}")
        time.sleep(0.1)


def count(script: str, child_args: list[str], tree: Path, prefix: str) -> int:
    """Instructions `script --child A B <signals> [C ...]` (child_args = [A, B, C ...]) executed
    between `go` and `done`, run under callgrind with PYTHONPATH=`tree`."""
    signals = Path(tempfile.mkdtemp(prefix=prefix))
    out = signals / "callgrind.out"
    argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
            sys.executable, script, "--child", *child_args[:2], str(signals), *child_args[2:]]
    proc = subprocess.Popen(argv, env={**os.environ, "PYTHONPATH": str(tree)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(signals / "ready", proc)
        subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], check=True,
                       capture_output=True)
        (signals / "go").touch()
        wait_for(signals / "done", proc)
        subprocess.run(["callgrind_control", "-i", "off", str(proc.pid)], check=True,
                       capture_output=True)
        (signals / "stop").touch()  # a child that waits for it may now exit
        log, _ = proc.communicate(timeout=600)
        keep = os.environ.get("BENCH_CALLGRIND_KEEP")
        if keep:  # a folder: the out file kept there, for callgrind_annotate --inclusive=yes
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(out, Path(keep) / f"{prefix}{tree.parent.name}.{proc.pid}.out")
    finally:
        if proc.poll() is None:
            proc.kill()
        shutil.rmtree(signals, ignore_errors=True)
    found = re.search(rb"Collected : (\d+)", log)
    if found is None:
        raise SystemExit(f"no count from callgrind:\n{log.decode(errors='replace')[-2000:]}")
    return int(found.group(1))
