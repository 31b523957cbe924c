"""`llmroute models --abilities`: each pool model's learned-router profile, where it came from, and
its P(good) on a sample prompt."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..engine import Engine
from ..errors import InvalidRequestError
from ..reports.tables import Layout, fit
from ..routers import default_registry
from ..routers.base import BuildContext, Router
from ..routers.cascade import CascadeRouter
from ..routers.classifier import ClassifierParams, ClassifierRouter, build
from .common import out, print_table, write_csv

SAMPLE_PROMPT = "Solve 3x² − 12x + 9 = 0 step by step for a beginner."


@dataclass(frozen=True)
class AbilityRow:
    """One pool model as the classifier sees it."""

    name: str
    tier: str
    kind: str
    known: str
    detail: str
    describe: str
    p_good: float

    def as_dict(self) -> dict[str, str | float]:
        return {"name": self.name, "tier": self.tier, "source": self.kind, "known": self.known,
                "detail": self.detail, "from": self.describe, "p_good": round(self.p_good, 4)}


def _classifiers(router: Router) -> list[ClassifierRouter]:
    if isinstance(router, ClassifierRouter):
        return [router]
    if isinstance(router, CascadeRouter):
        return [c for stage in router.stages for c in _classifiers(stage.router)]
    return []


def find_classifier(engine: Engine, policy: str | None) -> tuple[str, ClassifierRouter]:
    """The named policy's classifier; without a name, the default policy's, else any policy's, else
    one with default parameters (the bundled artifact) over the engine's pool."""
    if policy is not None:
        name, router = engine.router(policy)
        found = _classifiers(router)
        if not found:
            raise InvalidRequestError(f"policy {name!r} has no classifier stage")
        return name, found[0]
    default, _ = engine.router(None)
    for name in [default, *engine.policies]:
        found = _classifiers(engine.policies[name])
        if found:
            return name, found[0]
    settings = engine.settings
    ctx = BuildContext(settings.tier_names, engine.catalog, settings.rules, default_registry(),
                       "abilities")
    return "(default classifier)", build(ClassifierParams(), ctx)


def ability_rows(router: ClassifierRouter, prompt: str) -> list[AbilityRow]:
    """A row per pool model the classifier routes to, in pool order."""
    names = list(router.model.models)
    p_good = router.model.predict(prompt, names).p_good
    rows = []
    for name, p in zip(names, p_good, strict=True):
        source = router.sources[name]
        rows.append(AbilityRow(name, router.tiers.get(name, ""), source.kind, source.known,
                               source.detail, source.describe(), float(p)))
    return rows


#: The abilities table's columns; `--wide` adds what the profile is known from and its detail.
ABILITY_LAYOUT = Layout(("model", "tier", "source", "from", "P(good)", "known", "detail"),
                        extra=("detail", "known"), drop_first=("tier",),
                        wrap=("from", "known", "detail"),
                        left=("tier", "source", "from", "known", "detail"))


def ability_cells(row: AbilityRow) -> dict[str, str]:
    """One pool model's cells."""
    return {"model": row.name, "tier": row.tier or "-", "source": row.kind, "from": row.describe,
            "P(good)": f"{row.p_good:.2f}", "known": row.known or "-", "detail": row.detail or "-"}


def print_abilities(engine: Engine, policy: str | None, prompt: str, form: str) -> None:
    """Print the table (or JSON, CSV) of `ability_rows`; `form`: table, wide, json or csv."""
    name, router = find_classifier(engine, policy)
    rows = ability_rows(router, prompt)
    if form == "json":
        out.print_json(json.dumps({"policy": name, "prompt": prompt,
                                   "models": [r.as_dict() for r in rows]}))
        return
    if form == "csv":
        write_csv([r.as_dict() for r in rows])
        return
    out.print(f"Profiles of the learned router (policy {name}); P(good) on: {prompt}",
              markup=False)
    wide = form == "wide"
    print_table(fit(ABILITY_LAYOUT, None, [ability_cells(r) for r in rows], wide, out.width), wide)
