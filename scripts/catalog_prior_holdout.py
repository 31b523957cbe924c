"""Measure the catalog prior (issue 13) by holding models out.

For every artifact model with a catalog entry: fit the catalog prior without it, profile it from its
catalog entry alone, and compare with its true (trained) profile and with the tier / all-model mean
prior (also fitted without it), against its real outcomes:

- profile quality: mean predicted vs real accuracy, log loss and AUC of P(good) on its prompts
  (RouterBench test for RouterBench models: held-out prompts; ZeroEval MATH-L5 + CRUXEval for the
  others: prompts the latent space was trained on, so the true profile's numbers there are in-sample);
- routing (RouterBench models): the 11-model router on RouterBench test with the held-out model's
  profile replaced, read off the cost–quality hull as % of gpt-4's quality at 15% / 30% of its cost.

The bundled artifact's latent space is reused: the model is held out of the prior's regression (and
of the tier mean), not of the SVD that made the latent space (one model of 60 shapes it little, and
all three variants share it).

    python scripts/catalog_prior_holdout.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from llmroute.catalog import resolve_model
from llmroute.learn.abilities import fit_profile
from llmroute.learn.artifact import load_default
from llmroute.learn.catalog_prior import KNOWN_CATALOG_KEYS, CatalogPrior
from llmroute.learn.data import OutcomeTable, load_records
from llmroute.learn.evaluate_quick import hull_readings, router_curve
from llmroute.learn.model import ModelProfile, RouterModel

SAMPLE = "Solve 3x² − 12x + 9 = 0 step by step for a beginner."


def _auc(p: np.ndarray, y: np.ndarray) -> float:
    pos, neg = p[y > 0.5], p[y <= 0.5]
    if len(pos) == 0 or len(neg) == 0:
        return math.nan
    order = np.argsort(np.concatenate([pos, neg]), kind="stable")
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def _scores(profile: ModelProfile, z: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    logit = z @ profile.ability.astype(np.float64) + profile.bias
    p = np.clip(1 / (1 + np.exp(-logit)), 1e-6, 1 - 1e-6)
    loss = float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())
    return float(p.mean()), loss, _auc(p, y)


def variants(model: RouterModel, name: str) -> dict[str, ModelProfile]:
    """The held-out model's true profile, catalog prior and tier (or all-model mean) prior."""
    true = model.profile(name)
    prior = CatalogPrior.fit(model, exclude={name})
    assert prior is not None
    spec = resolve_model(KNOWN_CATALOG_KEYS[name], None)
    assert spec is not None
    catalog = prior.profile(name, spec)
    assert catalog is not None
    others = model.select([m for m in model.models if m != name])
    tier = true.tier if true.tier in set(others.tiers) else None
    mean = fit_profile(others, name, [], [], tier=tier)
    keep = {"ability", "bias", "length", "length_bias"}
    def like_true(p: ModelProfile) -> ModelProfile:
        return replace(true, **{k: getattr(p, k) for k in keep})
    return {"true": true, "catalog": like_true(catalog),
            ("tier" if tier else "mean"): like_true(mean)}


def profile_rows(model: RouterModel, tables: dict[str, OutcomeTable]) -> list[str]:
    lines = ["| model | prompts | real acc | predicted acc: true / catalog / tier-or-mean | "
             "log loss: true / catalog / tier-or-mean | AUC: true / catalog / tier-or-mean |",
             "|---|---|---|---|---|---|"]
    sums = np.zeros(6)
    count = 0
    for name in model.models:
        if name not in KNOWN_CATALOG_KEYS:
            continue
        where = "routerbench" if name in tables["routerbench"].models else "zeroeval"
        table = tables[where]
        j = table.models.index(name)
        rows = ~np.isnan(table.quality[:, j])
        y = table.quality[rows, j]
        z = model.latent_many([table.prompts[i] for i in np.flatnonzero(rows)]).astype(np.float64)
        got = {k: _scores(p, z, y) for k, p in variants(model, name).items()}
        t, c, m = got["true"], got["catalog"], got.get("tier", got.get("mean"))
        assert m is not None
        label = "tier" if "tier" in got else "mean"
        lines.append(f"| {name} ({where}) | {len(y)} | {y.mean():.3f} | {t[0]:.3f} / {c[0]:.3f} / "
                     f"{m[0]:.3f} ({label}) | {t[1]:.3f} / {c[1]:.3f} / {m[1]:.3f} | "
                     f"{t[2]:.3f} / {c[2]:.3f} / {m[2]:.3f} |")
        sums += [t[1], c[1], m[1], abs(t[0] - y.mean()), abs(c[0] - y.mean()), abs(m[0] - y.mean())]
        count += 1
    s = sums / count
    lines.append(f"| mean of {count} | | | abs. error {s[3]:.3f} / {s[4]:.3f} / {s[5]:.3f} | "
                 f"{s[0]:.3f} / {s[1]:.3f} / {s[2]:.3f} | |")
    return lines


def routing_rows(model: RouterModel, test: OutcomeTable) -> list[str]:
    lines = ["| held-out model | profile | quality at 15% of gpt-4's cost | at 30% | "
             "cost for 95% of its quality |", "|---|---|---|---|---|"]
    pool = list(test.models)
    base = model.select(pool)
    def read(m: RouterModel) -> str:
        r = hull_readings(router_curve(m, test))
        return (f"{r['quality_at_15pct_cost'] * 100:.1f}% | {r['quality_at_30pct_cost'] * 100:.1f}% | "
                f"{r['cost_for_95pct_quality'] * 100:.1f}%")
    lines.append(f"| (none) | every model trained | {read(base)} |")
    for name in pool:
        if name not in KNOWN_CATALOG_KEYS:
            continue
        for kind, profile in variants(model, name).items():
            if kind == "true":
                continue
            swapped = base.with_profiles([profile if p.name == name else p for p in base.profiles()])
            lines.append(f"| {name} | {kind} prior | {read(swapped)} |")
    return lines


def example_lines(model: RouterModel) -> list[str]:
    """The issue's example: P(good) of the default config's simple-tier models, before (every model
    of a tier got the tier's average profile) and now (`llmroute models --abilities`)."""
    from llmroute.config import load
    from llmroute.engine import Engine
    from llmroute.learn.abilities import profile_from_tier
    from llmroute.routers.classifier import sourced_pool_profiles

    engine = Engine(load(None))
    z = model.latent(SAMPLE).astype(np.float64)
    def p(profile: ModelProfile) -> float:
        return float(1 / (1 + np.exp(-(z @ profile.ability.astype(np.float64) + profile.bias))))
    lines = [f"{SAMPLE!r}: model | before (tier prior) | now (source)"]
    for s in sourced_pool_profiles(model, engine.catalog, {}):
        before = profile_from_tier(model, s.profile.name, s.profile.tier)
        lines.append(f"{s.profile.name} | {p(before):.2f} | {p(s.profile):.2f} ({s.source.describe()})")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = parser.parse_args(argv)
    model = load_default()
    test = OutcomeTable.of(load_records(args.data / "routerbench/test.jsonl")).complete()
    zero = [*load_records(args.data / "zeroeval/math-l5.jsonl"),
            *load_records(args.data / "zeroeval/crux.jsonl")]
    tables = {"routerbench": test, "zeroeval": OutcomeTable.of(zero)}
    print("\n".join(example_lines(model)))
    print()
    print("\n".join(profile_rows(model, tables)))
    print()
    print("\n".join(routing_rows(model, test)))


if __name__ == "__main__":
    main()
