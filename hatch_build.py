"""Hatch build hook: compile the featurizer's optional C kernel (`src/llmroute/learn/_kernel.c`).

It runs for every wheel build, editable ones (`make setup`: `pip install -e`) included, with the C
compiler of the interpreter's build (`CC`, else `cc`) and its headers; the library lands next to
its source (the editable install imports from src/). When the compiler or the headers are missing,
or `LLMROUTE_NO_KERNEL=1`, it prints why and the install goes on: the pure-Python path then runs
(the same features). Also runnable by hand: `python hatch_build.py` builds it in place.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # run by hand, without hatchling
    BuildHookInterface = object  # type: ignore[assignment,misc]

SOURCE = Path("src/llmroute/learn/_kernel.c")
FLAGS = ("-O2", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math", "-std=c11", "-Wall")


def target(root: Path) -> Path:
    """Where the library goes: beside its source, named for this interpreter."""
    return root / SOURCE.with_name("_kernel" + str(sysconfig.get_config_var("EXT_SUFFIX") or ".so"))


def compile_kernel(root: Path) -> Path | None:
    """Compile the kernel; None (and a message on stderr) when it cannot be built here."""
    if os.environ.get("LLMROUTE_NO_KERNEL") == "1":
        print("llmroute: LLMROUTE_NO_KERNEL=1: the featurizer's C kernel is not built", file=sys.stderr)
        return None
    out = target(root)
    include = sysconfig.get_paths()["include"]
    if not (Path(include) / "Python.h").exists():
        print(f"llmroute: no Python.h in {include}: the C kernel is not built (pure Python runs)",
              file=sys.stderr)
        return None
    cc = shlex.split(os.environ.get("CC") or str(sysconfig.get_config_var("CC") or "cc"))
    cmd = [*cc, *FLAGS, f"-I{include}", str(root / SOURCE), "-o", str(out), "-lm"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as exc:
        print(f"llmroute: no C compiler ({exc}): the C kernel is not built (pure Python runs)",
              file=sys.stderr)
        return None
    if done.returncode != 0:
        print(f"llmroute: compiling the C kernel failed (pure Python runs):\n{done.stderr}", file=sys.stderr)
        return None
    return out


class KernelBuildHook(BuildHookInterface):  # type: ignore[misc]
    """Builds the kernel; a wheel that holds it is tagged for this interpreter and platform."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        built = compile_kernel(Path(self.root))
        if built is None:
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if version != "editable":
            build_data["force_include"][str(built)] = str(built.relative_to(Path(self.root) / "src"))


if __name__ == "__main__":
    made = compile_kernel(Path(__file__).resolve().parent)
    print(made if made is not None else "not built")
    sys.exit(0 if made is not None else 1)
