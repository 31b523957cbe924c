"""`learn.blas.pin`: the build and measurement commands run under the OpenBLAS settings the bundled
artifact and the transfer table were built with, whatever the machine's own would be."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from llmroute.learn.blas import OPT_OUT, PINNED, pinned_environ


def test_an_unpinned_x86_64_environment_gets_the_pinned_values() -> None:
    env = pinned_environ({"PATH": "/bin", "OPENBLAS_NUM_THREADS": "1"}, "x86_64")
    assert env == {"PATH": "/bin", **PINNED}


@pytest.mark.parametrize("environ, machine", [
    ({**PINNED, "PATH": "/bin"}, "x86_64"),       # pinned already: no re-execution, no loop
    ({OPT_OUT: "1"}, "x86_64"),                   # the machine's own kernels asked for
    ({}, "aarch64"),                              # PINNED names x86-64 kernels
])
def test_nothing_to_do(environ: dict[str, str], machine: str) -> None:
    assert pinned_environ(environ, machine) is None


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="x86-64 kernels")
def test_pin_reexecutes_the_command_under_the_pinned_kernels_and_threads() -> None:
    code = ("import json, os; from llmroute.learn import blas; blas.pin(); "
            "from threadpoolctl import threadpool_info; "
            "info = [i for i in threadpool_info() if i['internal_api'] == 'openblas']; "
            "print(json.dumps([os.environ['OPENBLAS_CORETYPE'], [i['architecture'] for i in info], "
            "[i['num_threads'] for i in info]]))")
    env = {k: v for k, v in os.environ.items() if k != OPT_OUT}
    env.update(OPENBLAS_CORETYPE="SkylakeX", OPENBLAS_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    coretype, architectures, threads = json.loads(done.stdout.strip().splitlines()[-1])
    assert coretype == "Zen"
    # OpenBLAS runs its Haswell (AVX2) kernels for Zen and reports them so: not SkylakeX's, as asked
    assert architectures and set(architectures) <= {"Zen", "Haswell"}
    assert set(threads) == {min(2, len(os.sched_getaffinity(0)))}
