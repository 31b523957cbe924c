"""Constraints applied before any router decides: allowed/excluded wildcards, context window,
maximum output, and required capabilities. The result says why each excluded model was excluded."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import translate
from functools import lru_cache

from .catalog import ModelSpec
from .frozen import quick_init
from .types import RouteRequest


@lru_cache(maxsize=1024)
def _pattern(glob: str) -> re.Pattern[str]:
    return re.compile(translate(glob))


def matches(model: ModelSpec, patterns: Iterable[str]) -> bool:
    """True when any wildcard pattern (`anthropic/*`, `*mini*`, an exact name) matches the model,
    by its configured name, as `provider/bare-name`, or by its bare name (`gpt-4o-mini`)."""
    bare = model.name.split("/", 1)[-1]
    names = (model.name, f"{model.provider}/{bare}", bare)
    return any(_pattern(p).fullmatch(n) for p in patterns for n in names)


@quick_init  # one a request
@dataclass(frozen=True)
class Candidates:
    """The models a router may choose from, in ladder order, and why the others were excluded."""

    models: tuple[ModelSpec, ...]
    tiers: tuple[str, ...]
    excluded: Mapping[str, str] = field(default_factory=dict)

    def names(self) -> tuple[str, ...]:
        """Names of the eligible models."""
        return tuple(spec.name for spec in self.models)

    def __contains__(self, name: object) -> bool:
        return any(spec.name == name for spec in self.models)


def exclusion_reason(model: ModelSpec, request: RouteRequest) -> str | None:
    """Why `model` cannot serve `request`, or None when it can. Exclusions win over allowances."""
    if request.excluded_models and matches(model, request.excluded_models):
        return "excluded by excluded_models"
    if request.allowed_models and not matches(model, request.allowed_models):
        return "not in allowed_models"
    if request.key_models and not matches(model, request.key_models):
        return "not allowed for this gateway key"
    if request.requires:                   # most requests require nothing: no set, no sort
        missing = sorted(request.requires - model.capabilities)
        if missing:
            return f"lacks capability: {', '.join(missing)}"
    wanted = request.max_output_tokens
    if wanted is not None and model.max_output_tokens is not None and wanted > model.max_output_tokens:
        return f"max_tokens {wanted} exceeds its max output of {model.max_output_tokens}"
    needed = request.input_tokens + (wanted or 0)
    if model.context_window is not None and needed > model.context_window:
        return (
            f"context window {model.context_window} < ~{request.input_tokens} prompt tokens"
            + (f" + {wanted} max_tokens" if wanted else "")
        )
    return None


def eligible(pool: Iterable[ModelSpec], request: RouteRequest, tiers: Sequence[str]) -> Candidates:
    """Split the pool into eligible models and excluded ones (with reasons)."""
    keep: list[ModelSpec] = []
    excluded: dict[str, str] = {}
    for spec in pool:
        reason = exclusion_reason(spec, request)
        if reason is None:
            keep.append(spec)
        else:
            excluded[spec.name] = reason
    return Candidates(tuple(keep), tuple(tiers), excluded)
