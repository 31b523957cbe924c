"""`make router-artifact` rebuilds the bundled learned router byte for byte (issue 13: "the bundled
artifact is rebuilt from all sources by `make router-artifact`"): the script run as the Makefile
runs it, on this machine, into a folder holding a copy of the bundled artifact, must write the
same `.npz` and `.json`. A change to the training code or data that moves the artifact fails here
until the artifact is rebuilt (and its numbers in docs/benchmarks.md measured again). About
2-4 minutes of one core.

Byte for byte where numpy takes the AVX-512 paths the bundled artifact was built with (its float64
exp and log have AVX-512 loops and fall back to the C library's without): on a machine without
AVX-512 (session 21's Zen 1 VM) the same pinned build moves the fit's last bits and, through the
optimiser, the arrays by up to a few parts in a thousand. There the rebuild must still give the
same models, the same shapes and RouterBench test metrics within 0.005 of the recorded ones."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
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
    if not _numpy_avx512():
        _assert_equivalent(tmp_path / "router", bundled)
        return
    built = (tmp_path / "router.npz").read_bytes()
    if built != npz.read_bytes():  # name what moved; never hand pytest megabytes to diff
        pytest.fail(f"rebuilt arrays differ from the bundled ones: {_moved(tmp_path / 'router.npz', npz)}")
    assert (tmp_path / "router.json").read_text() == meta.read_text()


def _numpy_avx512() -> bool:
    """Whether numpy dispatches its AVX-512 loops on this machine."""
    features = getattr(getattr(getattr(np, "_core", None), "_multiarray_umath", None),
                       "__cpu_features__", {})
    return bool(features.get("AVX512F"))


def _assert_equivalent(built: Path, bundled: Path) -> None:
    """The same models and array shapes, and RouterBench test metrics within 0.005 (hull and plain)."""
    new, old = artifact.read_metadata(built), artifact.read_metadata(bundled)
    assert new["models"] == old["models"]
    got, want = new["training"]["metrics"], old["training"]["metrics"]
    for scope_got, scope_want in ((got, want), (got["on_hull"], want["on_hull"])):
        for name, value in scope_want.items():
            if isinstance(value, float):
                assert abs(scope_got[name] - value) <= 0.005, (name, scope_got[name], value)
    with np.load(built.with_suffix(".npz")) as a, np.load(bundled.with_suffix(".npz")) as b:
        assert sorted(a.files) == sorted(b.files)
        for name in b.files:
            assert a[name].shape == b[name].shape and a[name].dtype == b[name].dtype, name


def _moved(built: Path, bundled: Path) -> str:
    """Which arrays of two `.npz` files differ, and by how much at most."""
    with np.load(built) as new, np.load(bundled) as old:
        names = sorted(set(new.files) | set(old.files))
        moved = []
        for name in names:
            if name not in new.files or name not in old.files:
                moved.append(f"{name} (in one file only)")
                continue
            a, b = new[name], old[name]
            if a.shape != b.shape or a.dtype != b.dtype:
                moved.append(f"{name} ({a.shape} {a.dtype} vs {b.shape} {b.dtype})")
            elif a.tobytes() != b.tobytes():
                diff = np.abs(a.astype(np.float64) - b.astype(np.float64)) if a.dtype.kind == "f" else None
                moved.append(f"{name} (max |Δ| {float(diff.max()):.3g})" if diff is not None else name)
    return ", ".join(moved) or "the same arrays, other bytes"


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
