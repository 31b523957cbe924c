"""Model aliases: a name a client sends that the gateway does not serve (Claude Code's
`claude-sonnet-4-5-20250929`, an SDK's default) mapped onto what it does serve. Pure.

Resolution, for a name that is neither `auto[/policy]` nor a served model, first match wins:

1. `model_aliases:` exact keys;
2. `model_aliases:` glob patterns (`*`, `?`, `[...]`; fnmatch, case-sensitive), in config order;
3. a model name without its `<provider>/` prefix, and a dated snapshot (`-YYYYMMDD` or
   `@YYYYMMDD` at the end; `-latest` too), resolve to the one served model named as the name
   without its date (`claude-sonnet-4-5`, or `<provider>/claude-sonnet-4-5`), else to the one
   served model whose `upstream_name` is the name as sent; none or several: no resolution
   (never a guess).

A target is `auto`, `auto/<policy>`, a served model, or a tier (its primary model, then its
fallbacks). `llmroute config check` refuses a target that does not exist (`alias_problems`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Final

from .errors import ConfigProblem

AUTO: Final = "auto"
_SNAPSHOT: Final = re.compile(r"^(?P<base>.+?)(?:[-@]\d{8}|-latest)$")
_GLOB: Final = re.compile(r"[*?\[]")


@dataclass(frozen=True, slots=True)
class Resolved:
    """Where an alias led: `target` (auto[/policy], a model or a tier) and how (`via`)."""

    target: str
    via: str


@dataclass(frozen=True, slots=True)
class Aliases:
    """The configured aliases and what snapshot names may resolve to."""

    exact: Mapping[str, str]
    patterns: tuple[tuple[str, str], ...]
    #: Served model name -> its upstream name.
    served: Mapping[str, str]

    @classmethod
    def build(cls, configured: Mapping[str, str], served: Mapping[str, str]) -> Aliases:
        exact = {k: v for k, v in configured.items() if not _GLOB.search(k)}
        patterns = tuple((k, v) for k, v in configured.items() if _GLOB.search(k))
        return cls(exact, patterns, served)

    def resolve(self, name: str) -> Resolved | None:
        """Where `name` leads, None when nowhere (the caller's 404)."""
        if name in self.exact:
            return Resolved(self.exact[name], f"alias {name!r}")
        for pattern, target in self.patterns:
            if fnmatchcase(name, pattern):
                return Resolved(target, f"alias pattern {pattern!r}")
        model = self._snapshot(name)
        return None if model is None else Resolved(model, "snapshot name")

    def _snapshot(self, name: str) -> str | None:
        match = _SNAPSHOT.match(name)
        base = name if match is None else match["base"]
        named = [m for m in self.served if m.rsplit("/", 1)[-1] == base]
        if len(named) == 1:
            return named[0]
        upstream = [m for m, up in self.served.items() if up == name]
        return upstream[0] if len(upstream) == 1 and not named else None


def alias_problems(configured: Mapping[str, str], models: Collection[str], tiers: Sequence[str],
                   policies: Sequence[str]) -> list[ConfigProblem]:
    """`model_aliases:` entries whose target does not exist or whose name is a served model
    (`models`: the routable pool, the models of `models:` and of the tiers)."""
    problems: list[ConfigProblem] = []
    known = f"targets are auto, auto/<policy> ({', '.join(policies)}), a model or a tier " \
            f"({', '.join(tiers)})"
    for name, target in configured.items():
        path = f"model_aliases.{name}"
        if name in models:
            problems.append(ConfigProblem(path, f"{name!r} is a served model: the alias would "
                                                "never apply", "remove it"))
        if target == AUTO or target in models or target in tiers:
            continue
        if target.startswith(AUTO + "/") and target[len(AUTO) + 1:] in policies:
            continue
        problems.append(ConfigProblem(path, f"unknown target {target!r}", known))
    return problems
