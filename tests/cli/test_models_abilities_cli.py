"""`llmroute models --abilities`: where each pool model's profile comes from (issue 13)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMROUTE")}
    return subprocess.run([sys.executable, "-m", "llmroute", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=60)


def test_abilities_table_and_json_show_each_profile_source(tmp_path: Path) -> None:
    table = run("models", "--abilities", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "alias of known model gpt-4o-mini-2024-07-18" in table.stdout
    assert "catalog prior" in table.stdout and "P(good)" in table.stdout
    config = tmp_path / "conf.yaml"
    config.write_text("models:\n  anthropic/claude-haiku-4-5: {like: claude-3-haiku-20240307}\n")
    listed = json.loads(run("models", "--abilities", "--json", "-c", str(config),
                            "--prompt", "What is 2+2?", cwd=tmp_path).stdout)
    assert listed["policy"] == "default" and listed["prompt"] == "What is 2+2?"
    rows = {row["name"]: row for row in listed["models"]}
    assert rows["anthropic/claude-haiku-4-5"]["source"] == "pinned"
    assert rows["anthropic/claude-haiku-4-5"]["known"] == "claude-3-haiku-20240307"
    assert rows["openai/gpt-4.1"]["source"] == "catalog"
    assert all(0.0 <= row["p_good"] <= 1.0 for row in rows.values())


def test_abilities_of_a_policy_without_a_classifier_is_an_error(tmp_path: Path) -> None:
    bad = run("models", "--abilities", "--policy", "rules", cwd=tmp_path)
    assert bad.returncode != 0 and "has no classifier stage" in bad.stderr
