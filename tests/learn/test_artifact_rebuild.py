"""`make router-artifact` rebuilds the bundled learned router byte for byte (issue 13: "the bundled
artifact is rebuilt from all sources by `make router-artifact`"): the script run as the Makefile
runs it, on this machine, into a folder holding a copy of the bundled artifact, must write the
same `.npz` and `.json`. A change to the training code or data that moves the artifact fails here
until the artifact is rebuilt (and its numbers in docs/benchmarks.md measured again). About
2-3 minutes of one core."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llmroute.learn import artifact

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
SCRIPT = REPO / "scripts" / "build_router_artifact.py"

pytestmark = [
    pytest.mark.skipif(not (DATA / "routerbench" / "train.jsonl").exists(), reason="no shared data"),
    pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                       reason="the bundled bytes are those of OpenBLAS's x86-64 (Zen) kernels"),
    pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2,
                       reason="OpenBLAS takes its one-thread path on one CPU: other last bits"),
]


def test_the_bundled_artifact_is_rebuilt_byte_for_byte(tmp_path: Path) -> None:
    bundled = artifact.default_path()
    npz, meta = bundled.with_suffix(".npz"), bundled.with_suffix(".json")
    shutil.copy(npz, tmp_path / "router.npz")
    shutil.copy(meta, tmp_path / "router.json")
    # the environment of a machine that would otherwise pick other BLAS kernels or one thread
    env = {k: v for k, v in os.environ.items() if k not in ("SOURCE_DATE_EPOCH", "LLMROUTE_NATIVE_BLAS")}
    env.update(OPENBLAS_NUM_THREADS="1", OPENBLAS_CORETYPE="SkylakeX")
    argv = [sys.executable, str(SCRIPT), "--data", str(DATA), "--out", str(tmp_path / "router")]
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "router.npz").read_bytes() == npz.read_bytes()
    assert (tmp_path / "router.json").read_text() == meta.read_text()


def test_a_rebuild_elsewhere_keeps_no_stale_date(tmp_path: Path) -> None:
    """The date is kept only when the arrays are the same: an artifact at --out with other arrays
    does not lend its date."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import build_router_artifact as build
    finally:
        sys.path.remove(str(SCRIPT.parent))
    meta = artifact.read_metadata(artifact.default_path())
    shutil.copy(artifact.default_path().with_suffix(".json"), tmp_path / "router.json")
    same = meta["arrays"]["sha256"]
    assert build.recorded_date(tmp_path / "router", same) == meta["training"]["date"]
    assert build.recorded_date(tmp_path / "router", "0" * 64) is None
    assert build.recorded_date(tmp_path / "nothing", same) is None
    data = tmp_path / "data.jsonl"
    data.write_text("{}\n")
    os.utime(data, (1_700_000_000, 1_700_000_000))  # 2023-11-14
    assert build.build_date([data], None, tmp_path / "router", "0" * 64) == "2023-11-14"
    assert build.build_date([data], "2030-01-02", tmp_path / "router", same) == "2030-01-02"
    assert build.build_date([data], None, tmp_path / "router", same) == meta["training"]["date"]
