"""The one Router protocol, what a router returns, and the registry of router types.

A router never performs I/O. `decide(request, candidates)` returns either a `Verdict` (the decision)
or a `Consult`: a request for one LLM call that the caller (the engine, on behalf of the gateway)
performs, handing the reply back through `Consult.resume`, which again returns a Verdict or a Consult.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from pydantic import BaseModel, ConfigDict

from ..catalog import Catalog
from ..constraints import Candidates
from ..errors import ConfigProblem
from ..frozen import quick_init
from ..settings import RuleConfig
from ..types import RouteRequest

if TYPE_CHECKING:  # numpy and the learned model load only with a classifier
    from ..learn.model import RouterModel
    from ..learn.online_hub import OnlineHub


@quick_init  # three a cascade decision (the generated __init__: ~14 k instructions each)
@dataclass(frozen=True)
class Verdict:
    """A router's answer: a tier (and optionally preferred models), how sure it is, and why."""

    tier: str
    confidence: float
    reason: str
    router: str
    scores: Mapping[str, float] = field(default_factory=dict)
    models: tuple[str, ...] = ()
    #: Learning online: the choice came from exploration (a Thompson draw), and the prompt's
    #: latent (encoded, `learn.online_hub`) for feedback to update the router with.
    explored: bool = False
    latent: str | None = None

    def with_reason(self, reason: str) -> Verdict:
        """This verdict with another `reason`: `dataclasses.replace(self, reason=reason)` without its
        per-call field walk (a cascade does this on every decision; a test pins the field list)."""
        return Verdict(self.tier, self.confidence, reason, self.router, self.scores, self.models,
                       self.explored, self.latent)


@dataclass(frozen=True)
class LLMCall:
    """One chat completion a router needs answered (LLM-as-router)."""

    model: str
    messages: tuple[Mapping[str, str], ...]
    max_tokens: int
    temperature: float
    timeout_s: float


@dataclass(frozen=True)
class Consult:
    """Ask the caller to perform `call`; pass the reply text (or None and an error) to `resume`."""

    call: LLMCall
    resume: Callable[[str | None, str | None], Outcome]


Outcome: TypeAlias = Verdict | Consult


class Router(Protocol):
    """Decides where a request goes. Pure: no I/O, no clock or randomness it was not given."""

    name: str

    def decide(self, request: RouteRequest, candidates: Candidates) -> Outcome:
        """Choose a tier (and optionally models) for `request` among `candidates`."""
        ...


class RouterParams(BaseModel):
    """Base of every router type's parameters (strict: unknown keys are errors)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True)
class BuildContext:
    """What a router factory may use: the tier ladder, the catalog, the global rules table, and the
    registry (for routers made of routers)."""

    tiers: tuple[str, ...]
    catalog: Catalog
    rules: tuple[RuleConfig, ...]
    registry: Registry
    name: str = ""
    #: Learning online: the engine's posterior and exploration (None when `learning` is off).
    online: OnlineHub | None = None
    #: The router artifacts loaded for this build, by path ("" the bundled one): the classifiers
    #: of every policy over one artifact share its arrays (one copy of the projection, not one per
    #: policy). Shared by the contexts `replace` makes from this one.
    artifacts: dict[str, RouterModel] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class RouterType:
    """A registered router type: its parameters model, a factory, and a semantic check."""

    name: str
    params: type[RouterParams]
    build: Callable[[Any, BuildContext], Router]
    check: Callable[[Any, BuildContext], list[ConfigProblem]]


class Registry:
    """Router types by name. Build policies from specs without if/elif on names."""

    def __init__(self, types: Mapping[str, RouterType] | None = None):
        self._types: dict[str, RouterType] = dict(types or {})

    def register(self, router_type: RouterType) -> None:
        """Add (or replace) a router type."""
        self._types[router_type.name] = router_type

    def names(self) -> tuple[str, ...]:
        """Registered type names, sorted."""
        return tuple(sorted(self._types))

    def get(self, name: str) -> RouterType | None:
        """The router type called `name`, if registered."""
        return self._types.get(name)


def tier_problem(tier: str, ctx: BuildContext, path: str) -> list[ConfigProblem]:
    """A problem when `tier` is not on the ladder."""
    if tier in ctx.tiers:
        return []
    return [ConfigProblem(path, f"unknown tier {tier!r}", f"tiers are: {', '.join(ctx.tiers)}")]


def _pydantic_problems(exc: Exception, path: str) -> list[ConfigProblem]:
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return [ConfigProblem(path, str(exc))]
    problems = []
    for err in exc.errors():
        where = path + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
        hint = "unknown parameter for this router" if err["type"] == "extra_forbidden" else ""
        if not hint and "input" in err and err["type"] not in {"value_error", "missing"}:
            hint = f"got {type(err['input']).__name__} {str(err['input'])[:40]!r}"
        problems.append(ConfigProblem(where, err["msg"], hint))
    return problems


def validate_spec(spec: Mapping[str, Any], ctx: BuildContext, path: str
                  ) -> tuple[RouterParams | None, list[ConfigProblem]]:
    """Validate a router spec (`{router: TYPE, ...params}`): its type, parameters and references."""
    kind = spec.get("router")
    router_type = ctx.registry.get(kind) if isinstance(kind, str) else None
    if router_type is None:
        hint = f"registered routers: {', '.join(ctx.registry.names())}"
        return None, [ConfigProblem(f"{path}.router", f"unknown router {kind!r}", hint)]
    raw = {k: v for k, v in spec.items() if k != "router"}
    try:
        params = router_type.params.model_validate(raw)
    except Exception as exc:  # pydantic.ValidationError, reported with key paths
        return None, _pydantic_problems(exc, path)
    sub = replace(ctx, name=path)
    return params, router_type.check(params, sub)


def build_router(spec: Mapping[str, Any], ctx: BuildContext, name: str) -> Router:
    """Build a router from a validated spec (call `validate_spec` first for readable errors).
    `name` is where it sits in the config (for messages); the router's own name is its type's."""
    router_type = ctx.registry.get(str(spec["router"]))
    if router_type is None:
        raise KeyError(spec["router"])
    params = router_type.params.model_validate({k: v for k, v in spec.items() if k != "router"})
    return router_type.build(params, replace(ctx, name=name))
