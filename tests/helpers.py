"""Shared test helpers: configs written to a temporary folder, the default settings, candidates."""

from __future__ import annotations

import textwrap
from pathlib import Path

from llmroute import config
from llmroute import settings as s
from llmroute.catalog import Catalog
from llmroute.constraints import Candidates, eligible
from llmroute.routers import default_registry
from llmroute.routers.base import BuildContext
from llmroute.types import RouteRequest

LADDER = ("simple", "medium", "complex")


def write_yaml(tmp_path: Path, text: str, name: str = "llmroute.yaml") -> Path:
    """Write dedented YAML text to tmp_path/name and return the path."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


#: The environment config tests run in: the default providers' key variables set (so that their
#: "key not set" warnings do not mix into every test), nothing of the developer's.
TEST_ENV = {"OPENAI_API_KEY": "sk-test", "ANTHROPIC_API_KEY": "sk-ant-test"}


def check_yaml(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> config.Checked:
    """`config.check` of YAML text, isolated from the developer's environment."""
    return config.check(write_yaml(tmp_path, text),
                        environ=TEST_ENV if environ is None else environ)


def load_yaml(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> s.Settings:
    """`config.load` of YAML text, isolated from the developer's environment."""
    return config.load(write_yaml(tmp_path, text), environ=environ or {})


def default_settings() -> s.Settings:
    """The embedded defaults as Settings (no file, no environment)."""
    return s.Settings.model_validate(s.parse_yaml(s.default_config_text(), "embedded defaults"))


def build_context(settings: s.Settings | None = None, name: str = "test") -> BuildContext:
    """A router BuildContext over `settings` (default: the embedded defaults)."""
    settings = settings or default_settings()
    return BuildContext(settings.tier_names, Catalog.from_settings(settings), settings.rules,
                        default_registry(), name)


def no_candidates() -> Candidates:
    """Candidates for routers that do not look at them."""
    return Candidates((), LADDER)


def candidates_for(request: RouteRequest, settings: s.Settings | None = None) -> Candidates:
    """The eligible pool of `settings` (default: the embedded defaults) for `request`."""
    settings = settings or default_settings()
    return eligible(Catalog.from_settings(settings), request, settings.tier_names)
