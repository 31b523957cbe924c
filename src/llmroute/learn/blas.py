"""The same fit on any x86-64 machine: OpenBLAS picks its kernels by CPU (SkylakeX's on an Intel Xeon
with AVX-512, Zen's on an AMD EPYC) and takes another path on one thread than on two or more, and
either moves a fit's last bits: the bundled artifact's bytes, and the transfer table's APGRs in the
third decimal (docs/benchmarks.md, session 18). `pin()` runs the process under `PINNED`, what the
bundled artifact and the transfer table were built with (on Zen, OpenBLAS runs its Haswell, AVX2,
kernels), by re-executing it. For the build and measurement commands
(`scripts/build_router_artifact.py`, `python -m llmroute.learn.transfer` and `transfer_cache`, the
recipe scripts), not for serving or `llmroute train`.
`LLMROUTE_NATIVE_BLAS=1` keeps the machine's own choice. Reproducible on x86-64 with AVX-512 and
at least two CPUs (OpenBLAS runs no more threads than the CPUs it may use; without AVX-512 numpy's
float64 exp and log take other loops, so the last bits differ: docs/learning.md)."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping, Sequence

PINNED: Mapping[str, str] = {"OPENBLAS_CORETYPE": "Zen", "OPENBLAS_NUM_THREADS": "2"}
OPT_OUT = "LLMROUTE_NATIVE_BLAS"
_X86_64 = frozenset({"x86_64", "amd64"})


def pinned_environ(environ: Mapping[str, str], machine: str) -> dict[str, str] | None:
    """The environment to run a fit in, or None when `environ` is that already, opts out, or the
    machine is not x86-64 (whose kernels `PINNED` names)."""
    if machine.lower() not in _X86_64 or environ.get(OPT_OUT) == "1":
        return None
    if all(environ.get(k) == v for k, v in PINNED.items()):
        return None
    return {**environ, **PINNED}


def pin(argv: Sequence[str] | None = None) -> None:
    """Run this process under `PINNED`: re-execute the same command line (`sys.orig_argv`, or
    `argv`) with them (numpy, loaded with this package, has read OpenBLAS's environment already).
    Returns only when pinned, or when `pinned_environ` says there is nothing to do."""
    env = pinned_environ(os.environ, platform.machine())
    if env is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, list(argv or sys.orig_argv), env)
