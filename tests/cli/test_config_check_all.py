"""`llmroute config check`: every problem in one pass (a refused value does not hide a bad fallback
reference), a "did you mean" for a mistyped model, and the shipped examples check clean."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from test_cli import run

from llmroute.config import check
from llmroute.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
#: The keys a provider of the examples reads, as its users have them set.
KEYS = {"OPENAI_API_KEY": "sk-test", "ANTHROPIC_API_KEY": "sk-ant-test"}

BAD = """\
server: {port: "abc"}
tiers:
  simple: {model: openai/gpt-4o-mini, fallbacks: [openai/gpt-4o-mni]}
  medium: {model: openai/gpt-4.1-mini}
  complex: {model: openai/gpt-4.1}
"""


def test_every_problem_in_one_pass_with_a_near_match(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(BAD)
    result = run("config", "check", str(config), cwd=tmp_path, env={**KEYS, "COLUMNS": "200"})
    assert result.returncode == 2
    assert "server.port: Input should be a valid integer" in result.stderr
    assert "tiers.simple.fallbacks[0]: model 'openai/gpt-4o-mni' is not in the catalog" in (
        result.stderr)
    assert "did you mean 'openai/gpt-4o-mini'?" in result.stderr
    assert "2 error(s)" in result.stderr


def test_a_refused_value_leaves_its_own_problems_out(tmp_path: Path) -> None:
    config = tmp_path / "llmroute.yaml"
    config.write_text(BAD.replace("fallbacks: [openai/gpt-4o-mni]", "fallbacks: 7"))
    checked = check(config, environ=KEYS)
    paths = sorted(p.path for p in checked.errors)
    assert paths == ["server.port", "tiers.simple.fallbacks"]  # once each, nothing inside them


def _shipped() -> list[Path]:
    """llmroute.example.yaml and every llmroute config under examples/ (not other tools' YAML)."""
    fields = set(Settings.model_fields)
    found = [ROOT / "llmroute.example.yaml"]
    for path in sorted((ROOT / "examples").rglob("*.y*ml")):
        data = yaml.safe_load(path.read_text())
        if isinstance(data, dict) and data and set(data) <= fields:
            found.append(path)
    return found


def test_the_examples_are_found() -> None:
    assert {p.name for p in _shipped()} >= {"llmroute.example.yaml", "gateway.yaml"}


@pytest.mark.parametrize("path", _shipped(), ids=lambda p: p.name)
def test_a_shipped_example_checks_clean(path: Path) -> None:
    checked = check(path, environ=KEYS)
    assert checked.problems == (), [str(p) for p in checked.problems]
    result = run("config", "check", str(path), cwd=ROOT, env=KEYS)
    assert result.returncode == 0 and "warning" not in result.stdout + result.stderr


def test_dash_c_names_the_file_as_in_every_other_command(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(BAD)
    result = run("config", "check", "-c", str(config), cwd=tmp_path, env={**KEYS, "COLUMNS": "200"})
    assert result.returncode == 2 and "2 error(s)" in result.stderr
    good = ROOT / "llmroute.example.yaml"
    assert run("config", "check", "--config", str(good), cwd=ROOT, env=KEYS).returncode == 0
    both = run("config", "check", str(good), "-c", str(config), cwd=tmp_path, env=KEYS)
    assert both.returncode == 2 and "Two config files given" in both.stderr
