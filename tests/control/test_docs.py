"""Every configuration in docs/control.md is a valid llmroute config as written (copy-paste ready)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llmroute.config import check

DOC = Path(__file__).resolve().parents[2] / "docs" / "control.md"
BLOCKS = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_the_page_has_configs() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_each_config_block_checks_clean(block: str, tmp_path: Path) -> None:
    path = tmp_path / "llmroute.yaml"
    path.write_text(block, encoding="utf-8")
    result = check(path, environ={})
    assert result.errors == (), [str(p) for p in result.errors]
