"""The build hook (`hatch_build.py`) compiles the featurizer's C kernel where a compiler is, and
leaves the install going (pure Python then runs) where none is, or when `LLMROUTE_NO_KERNEL=1`."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("llmroute_hatch_build", ROOT / "hatch_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tree(tmp_path: Path) -> Path:
    (tmp_path / "src/llmroute/learn").mkdir(parents=True)
    shutil.copy(ROOT / "src/llmroute/learn/_kernel.c", tmp_path / "src/llmroute/learn/_kernel.c")
    return tmp_path


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler")
def test_it_compiles_a_loadable_kernel(tmp_path: Path) -> None:
    hook = _hook()
    built = hook.compile_kernel(_tree(tmp_path))
    assert built is not None and built.exists() and built.parent == tmp_path / "src/llmroute/learn"
    spec = importlib.util.spec_from_file_location("_kernel", built)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert {"Kernel", "Projector", "Pool"} <= set(dir(module))


def test_without_a_compiler_the_install_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    assert _hook().compile_kernel(_tree(tmp_path)) is None
    assert "pure Python runs" in capsys.readouterr().err


def test_switched_off_it_builds_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMROUTE_NO_KERNEL", "1")
    assert _hook().compile_kernel(_tree(tmp_path)) is None
    assert not list((tmp_path / "src/llmroute/learn").glob("*.so"))
