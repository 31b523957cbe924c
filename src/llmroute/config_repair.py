"""Every problem of a configuration in one pass: when the schema refuses some values, leave those
out (their defaults apply) and run the semantic checks on the rest, so a bad fallback reference
shows up beside a mistyped port instead of after it is fixed."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .errors import ConfigProblem

M = TypeVar("M", bound=BaseModel)

#: At most this many rounds of leaving refused values out.
_ROUNDS = 3


def _drop(raw: dict[str, Any], loc: Sequence[int | str]) -> bool:
    """Remove the value at `loc` from `raw` (True), or False when it is not there to remove."""
    parent: Any = raw
    for part in loc[:-1]:
        found = (isinstance(parent, Mapping) and part in parent) or (
            isinstance(parent, list) and isinstance(part, int) and part < len(parent))
        if not found:
            return False
        parent = parent[part]
    last = loc[-1] if loc else None
    if isinstance(parent, dict) and last in parent:
        del parent[last]
        return True
    return False


def _loc(error: Mapping[str, Any]) -> tuple[int | str, ...]:
    return tuple(p for p in error["loc"]
                 if not (isinstance(p, str) and p.startswith("function-")))


def without_refused(raw: Mapping[str, Any], model: type[M]) -> M | None:
    """`model` (a pydantic model class) validated from `raw` less the values its schema refuses,
    or None when leaving them out does not make it valid."""
    trial = copy.deepcopy(dict(raw))
    for _ in range(_ROUNDS):
        try:
            return model.model_validate(trial)
        except ValidationError as exc:
            if not all(_drop(trial, _loc(e)) for e in exc.errors()):
                return None
    return None


def _within(path: str, outer: str) -> bool:
    return path == outer or path.startswith((f"{outer}.", f"{outer}["))


def beyond(problems: Sequence[ConfigProblem], refused: Sequence[ConfigProblem]
           ) -> list[ConfigProblem]:
    """The semantic `problems` not about a value the schema already refused: neither inside it
    nor about the entry holding it (its problems may be the left-out value's)."""
    paths = [p.path for p in refused if p.path]
    return [p for p in problems
            if not any(_within(p.path, r) or (p.path and _within(r, p.path)) for r in paths)]
