"""Configuration as text: the embedded defaults, YAML parsed into a mapping (with the line of a
syntax error), a user's sections merged over the defaults, and `LLMROUTE__…` env overrides. What
comes out is the raw mapping `Settings` validates (`config.load` does both)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import resources
from typing import Any

import yaml

ENV_PREFIX = "LLMROUTE__"
#: Sections that are tables: a user's section replaces the default one wholesale.
#: Every other section is merged key by key over the defaults.
TABLE_SECTIONS = frozenset({"models", "tiers", "rules", "policies", "keys", "limits", "experiments"})


def default_config_text() -> str:
    """The embedded default configuration (YAML), shipped inside the package."""
    return resources.files("llmroute").joinpath("data/default.yaml").read_text(encoding="utf-8")


def parse_yaml(text: str, source: str) -> dict[str, Any]:
    """Parse YAML text into a mapping; raises ValueError with the line of a syntax error."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ValueError(f"{source}: invalid YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{source}: the top level must be a mapping, got {type(data).__name__}")
    if _cyclic(data, set()):
        raise ValueError(f"{source}: a YAML alias refers to a node that contains it (`&a [*a]`)")
    return data


def _cyclic(node: Any, path: set[int]) -> bool:
    """Whether `node` contains itself (a recursive YAML alias); `path`: the containers above."""
    if not isinstance(node, dict | list):
        return False
    if id(node) in path:
        return True
    path.add(id(node))
    found = any(_cyclic(child, path) for child in (node.values() if isinstance(node, dict)
                                                   else node))
    path.discard(id(node))
    return found


def merge_over_defaults(defaults: Mapping[str, Any], user: Mapping[str, Any]) -> dict[str, Any]:
    """User sections over default sections: tables replace, settings sections merge by key."""
    merged = dict(defaults)
    for key, value in user.items():
        if value is None:  # an empty section (`models:` with every entry commented out)
            continue
        base = merged.get(key)
        if key not in TABLE_SECTIONS and isinstance(base, dict) and isinstance(value, dict):
            merged[key] = {**base, **value}
        else:
            merged[key] = value
    return merged


def apply_env_overrides(
    raw: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Override keys from env vars: LLMROUTE__ROUTING__DEFAULT_POLICY=cheap sets routing.default_policy.

    Values are parsed as YAML scalars/flow values, so `true`, `12` and `[a, b]` keep their types.
    """
    env = os.environ if environ is None else environ
    result: dict[str, Any] = _deep_copy(raw)
    for name, text in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or len(name) == len(ENV_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        node = result
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[path[-1]] = _env_value(text)
    return result


def _env_value(text: str) -> Any:
    """An env value as a YAML scalar/flow value; text YAML cannot parse (`*mini*`) stays a string."""
    if not text:
        return ""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value
