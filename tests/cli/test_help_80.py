"""Every command's `--help` at 80 columns: complete sentences (no line cut before a word that
fitted), flags shown as switches (`--access-log/--no-access-log`), never `<bool>`."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import pytest
import typer
from typer.testing import CliRunner

from llmroute import __version__
from llmroute.cli.main import app

WIDTH = 80


def _paths(command: object, path: list[str]) -> Iterator[list[str]]:
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from _paths(sub, [*path, name])


PATHS = list(_paths(typer.main.get_command(app), []))


def _help(path: list[str]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": str(WIDTH)},
                                terminal_width=WIDTH)
    assert result.exit_code == 0, result.output
    return result.output


def _early_breaks(text: str) -> list[str]:
    """Lines wrapped although the next line's first word fitted on them: a hard line break of
    the source text showing through (a sentence cut mid-line)."""
    lines = [line.strip("│").rstrip() for line in text.splitlines()]
    found = []
    for line, after in itertools.pairwise(lines):
        match = re.match(r"( {3,})([a-z(][^ ]*)", after)
        if not line.strip() or match is None or set(line.strip()) <= set("─╭╮╰╯"):
            continue
        if len(line) + 1 + len(match.group(2)) <= WIDTH - 3:
            found.append(f"{line!r} / {after!r}")
    return found


def test_every_command_is_covered() -> None:
    names = {" ".join(p) for p in PATHS}
    assert {"", "serve", "report", "models", "demo", "config check", "db migrate"} <= names
    assert len(PATHS) >= 25


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "llmroute")
def test_help_renders_whole_sentences_at_80_columns(path: list[str]) -> None:
    text = _help(path)
    assert "<bool>" not in text
    assert max(len(line) for line in text.splitlines()) <= WIDTH
    assert _early_breaks(text) == []


def test_boolean_flags_show_both_switches() -> None:
    text = _help(["serve"])
    assert "--access-log" in text and "--no-access-log" in text


def test_the_early_break_detector_finds_a_hard_line_break() -> None:
    text = ("│ budgets      Each limit's use, remaining and reset time: the global limits,  │\n"
            "│              each key's and its team's                                       │\n"
            "│              (and with --user, that user's), read from the shared state      │\n")
    assert len(_early_breaks(text)) == 1


def test_version_flag_prints_the_version() -> None:
    for flag in ("--version", "-V"):
        result = CliRunner().invoke(app, [flag])
        assert result.exit_code == 0
        assert result.output.strip() == f"llmroute {__version__}"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "llmroute")
def test_no_help_text_is_cut_at_80_columns(path: list[str]) -> None:
    """No option's help or default is cut to `…` (issue 16: `eval --routers` showed its default
    as `random,rules,classifier,cascade,oracl…`)."""
    assert "…" not in _help(path)
