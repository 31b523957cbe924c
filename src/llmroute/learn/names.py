"""Which model the router artifact knows a gateway model as: the same model under another spelling.

Explicit rules, tried in order; none of them guesses between different models:

1. `exact`     — the artifact has the very name.
2. `spelling`  — the same name once both sides drop their provider prefixes (everything up to the
                 last `/`) and case: `anthropic/claude-3-haiku-20240307` is `claude-3-haiku-20240307`.
3. `snapshot`  — an undated name and exactly one known model that is that name plus a dated snapshot
                 suffix (`-YYYYMMDD` or `-YYYY-MM-DD`, year 20xx): `openai/gpt-4o-mini` is
                 `gpt-4o-mini-2024-07-18`. Two dated snapshots of the same name (`gpt-4o-2024-05-13`,
                 `gpt-4o-2024-08-06`) are different models: `gpt-4o` then resolves to neither.

A dated name never matches another date or an undated known model, and 4-digit suffixes
(`gpt-4-0314`, `deepseek-v2-chat-0628`) are part of the name, not snapshots: they name other models.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Rule = Literal["exact", "spelling", "snapshot"]

_SNAPSHOT = re.compile(r"^(?P<base>.+?)-(?P<year>20\d\d)-?(?P<month>[01]\d)-?(?P<day>[0-3]\d)$")


@dataclass(frozen=True)
class NameMatch:
    """`name` is the artifact's `known` model, by `rule`."""

    name: str
    known: str
    rule: Rule


def bare(name: str) -> str:
    """The name without provider prefixes, lower-cased: `openai/GPT-4o` -> `gpt-4o`."""
    return name.rsplit("/", 1)[-1].strip().lower()


def split_snapshot(name: str) -> tuple[str, str | None]:
    """(base, `YYYY-MM-DD`) of a bare name with a dated snapshot suffix, else (name, None)."""
    found = _SNAPSHOT.match(name)
    if found is None:
        return name, None
    return found["base"], f"{found['year']}-{found['month']}-{found['day']}"


def match_known(name: str, known: Sequence[str]) -> NameMatch | None:
    """The known model `name` is (rules above), or None when no rule applies or a rule finds two."""
    if name in known:
        return NameMatch(name, name, "exact")
    wanted = bare(name)
    same = [k for k in known if bare(k) == wanted]
    if len(same) == 1:
        return NameMatch(name, same[0], "spelling")
    if same:
        return None
    base, date = split_snapshot(wanted)
    if date is not None:
        return None
    snapshots = [k for k in known if (s := split_snapshot(bare(k)))[1] is not None and s[0] == base]
    if len(snapshots) == 1:
        return NameMatch(name, snapshots[0], "snapshot")
    return None


def closest(name: str, known: Sequence[str], n: int = 3) -> list[str]:
    """Known names closest to `name` by spelling, for error messages only (never to resolve)."""
    by_bare: dict[str, str] = {}
    for k in known:
        by_bare.setdefault(bare(k), k)
    hits = difflib.get_close_matches(bare(name), list(by_bare), n=n, cutoff=0.0)
    return [by_bare[h] for h in hits]
