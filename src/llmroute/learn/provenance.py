"""Where a pool model's profile comes from, and the one chain that picks it (day one, no outcomes).

In order, the first that applies:

1. `alias`   — a policy's `aliases:` names the artifact model to use;
2. `pinned`  — the model's `like:` in `models:` names a known model (same name rules as 3);
3. `trained` / `alias` — the artifact knows the model, by name or under another spelling (`names`);
4. `catalog` — the catalog prior: its price, context window, family and release date (`catalog_prior`);
5. `tier`    — the average known model of its tier (`abilities.profile_from_tier`).

`fitted` marks a profile fitted from the model's own outcomes (`abilities.fit_profile`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Literal

from ..catalog import ModelSpec
from ..errors import ConfigError, ConfigProblem
from .abilities import profile_from_tier
from .catalog_prior import CatalogPrior, family, released
from .model import ModelProfile, RouterModel
from .names import closest, match_known

SourceKind = Literal["trained", "alias", "pinned", "catalog", "tier", "fitted"]


@dataclass(frozen=True)
class ProfileSource:
    """Where one profile came from: `known` is the artifact model it copies (trained, alias,
    pinned), `detail` the evidence (the name rule, the catalog facts, the tier, the outcome count)."""

    kind: SourceKind
    known: str = ""
    detail: str = ""

    def describe(self) -> str:
        """One line for people."""
        if self.kind == "trained":
            return f"trained outcomes ({self.known})"
        if self.kind == "alias":
            return f"alias of known model {self.known} ({self.detail})"
        if self.kind == "pinned":
            return f"pinned like {self.known}"
        if self.kind == "catalog":
            return f"catalog prior ({self.detail})"
        if self.kind == "tier":
            return f"tier prior ({self.detail})"
        return f"fitted from {self.detail} outcomes"


@dataclass(frozen=True)
class SourcedProfile:
    """A profile and where it came from."""

    profile: ModelProfile
    source: ProfileSource


def like_problem(path: str, like: str, known: Sequence[str]) -> ConfigProblem | None:
    """The config problem of a `like:` naming no known model (None when it names one)."""
    if match_known(like, known) is not None:
        return None
    return ConfigProblem(path, f"`like: {like}` names no model the router artifact knows",
                         f"closest by name: {', '.join(closest(like, known))}")


def _copy(model: RouterModel, known: str, name: str, tier: str) -> ModelProfile:
    return replace(model.profile(known), name=name, tier=tier or model.tiers[model.index(known)])


def _money(value: Decimal | None) -> str:
    return "?" if value is None else format(value.normalize(), "f")


def _catalog_detail(name: str, spec: ModelSpec, prior: CatalogPrior) -> str:
    when = released(name)
    month = "release unknown" if when is None else \
        f"released {int(when)}-{round((when - int(when)) * 12) + 1:02d}"
    context = f"{spec.context_window:,} context" if spec.context_window else "context unknown"
    return (f"${_money(spec.input_per_m)}/${_money(spec.output_per_m)} per 1M, {context}, "
            f"{family(name, spec.provider)}, {month}; from {len(prior.names)} known models")


def day_one_profile(model: RouterModel, spec: ModelSpec, *, alias: str | None = None,
                    prior: CatalogPrior | None = None) -> SourcedProfile:
    """The profile pool model `spec` gets without outcomes of its own (the chain above).

    `ConfigError` when its `like:` names no known model; `KeyError` when nothing applies (no known
    name, no priced catalog entry, no tier known to the artifact)."""
    name, tier = spec.name, spec.tier or ""
    if alias is not None:
        return SourcedProfile(_copy(model, alias, name, tier),
                              ProfileSource("alias", alias, "policy aliases"))
    if spec.like is not None:
        pinned = match_known(spec.like, model.models)
        if pinned is None:
            problem = like_problem(f"models.{name}.like", spec.like, model.models)
            raise ConfigError([problem] if problem else [])
        return SourcedProfile(_copy(model, pinned.known, name, tier),
                              ProfileSource("pinned", pinned.known, "models: like"))
    found = match_known(name, model.models)
    if found is not None:
        kind: SourceKind = "trained" if found.rule == "exact" else "alias"
        return SourcedProfile(_copy(model, found.known, name, tier),
                              ProfileSource(kind, found.known, f"same model, {found.rule} rule"))
    from_catalog = prior.profile(name, spec, tier) if prior is not None else None
    if from_catalog is not None and prior is not None:
        return SourcedProfile(from_catalog,
                              ProfileSource("catalog", "", _catalog_detail(name, spec, prior)))
    if tier:
        return SourcedProfile(profile_from_tier(model, name, tier),
                              ProfileSource("tier", "", f"average known model of tier {tier!r}"))
    raise KeyError(f"model {name!r}: not in the router artifact, no priced catalog entry, no tier")
