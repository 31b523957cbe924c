"""The field a learning-online simulation runs on (issue 13): a held-out source split in halves
(in-domain train and field, no prompt in both), the offline router restricted to the source's models,
and the in-domain reference's choices (`build_setup`); `online_sim` runs the learners over it."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from . import policy
from .abilities import fit_profile
from .data import OutcomeTable
from .model import RouterModel
from .online import ABILITY_VAR, OnlineProfiles
from .sources import ALIASES, SourcedRecord

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Setup:
    """Everything a simulation needs, over the field prompts (rows) and the source's models."""

    models: tuple[str, ...]
    z: F64                      # field prompts' latent vectors in the offline router's space (N × d)
    quality: F64                # real outcomes (N × M)
    cost: F64                   # real costs (N × M), zeros when the source has none
    est_cost: F64               # per-model expected cost used by the policy (M)
    start: OnlineProfiles       # the offline router's profiles as the online prior
    indomain_choice: I64        # the in-domain router's choice per field prompt (N)
    has_cost: bool
    notes: tuple[str, ...] = ()


def pick_many(p: F64, est: F64, lam: float, target: float | None) -> I64:
    """`make_pick`'s policy over many prompts (N × M)."""
    if target is not None:
        return policy.by_target_many(p, est, target)
    return policy.by_tradeoff_many(p, est, lam)


def artifact_name(name: str, known: Sequence[str], aliases: Mapping[str, str] = ALIASES) -> str | None:
    """The artifact's name for a source model: itself, or a spelling that `aliases` maps to it."""
    if name in known:
        return name
    return next((k for k, v in aliases.items() if v == name and k in known), None)


def offline_router(router: RouterModel, models: Sequence[str]) -> tuple[RouterModel, list[str]]:
    """`router` restricted to `models` (see the module docstring); the models it did not know."""
    profiles, unknown = [], []
    for m in models:
        known = artifact_name(m, router.models)
        if known is not None:
            p = router.profile(known)
            profiles.append(type(p)(m, p.ability, p.bias, p.length, p.length_bias,
                                    p.usd_per_input_char, p.usd_per_output_char, p.tier))
        else:
            profiles.append(fit_profile(router, m, [], []))
            unknown.append(m)
    return router.with_profiles(profiles), unknown


def split_source(records: Sequence[SourcedRecord], seed: int, share: float = 0.5
                 ) -> tuple[list[SourcedRecord], list[SourcedRecord], int]:
    """(in-domain train, field, train records dropped for sharing a prompt with the field)."""
    order = np.random.default_rng([seed, 7]).permutation(len(records))
    cut = round(share * len(records))
    train = [records[i] for i in sorted(order[:cut])]
    field = [records[i] for i in sorted(order[cut:])]
    held = frozenset().union(*(r.texts for r in field)) if field else frozenset()
    kept = [r for r in train if not (r.texts & held)]
    return kept, field, len(train) - len(kept)


def build_setup(records: Sequence[SourcedRecord], router: RouterModel, seed: int,
                lam: float = 0.0, target: float | None = None, prior_scale: float = 1.0,
                ability_var: float = ABILITY_VAR) -> Setup:
    """Split, train the in-domain reference, and precompute latents and choices."""
    from .train import fit_router

    train, field, dropped = split_source(records, seed)
    full = OutcomeTable.of(r.record for r in records)
    models = tuple(m for j, m in enumerate(full.models) if not np.isnan(full.quality[:, j]).any())
    field_t = OutcomeTable.of((r.record for r in field), models)
    train_t = OutcomeTable.of((r.record for r in train), models)
    has_cost = not bool(np.isnan(field_t.cost).any() or np.isnan(train_t.cost).all())
    cost = field_t.cost if has_cost else np.zeros_like(field_t.quality)
    est = np.nanmean(train_t.cost, axis=0) if has_cost else np.zeros(len(models))
    off, unknown = offline_router(router, models)
    z = off.latent_many(field_t.prompts).astype(np.float64)
    start = OnlineProfiles.from_router(off, prior_scale=prior_scale, ability_var=ability_var,
                                       shared=0.0)
    t0 = time.monotonic()
    inside = fit_router(train_t)
    p_in, _ = inside.predict_many(field_t.prompts, list(models))
    choice = pick_many(p_in, np.broadcast_to(est, p_in.shape), lam, target)
    notes = (f"in-domain train {len(train)} records ({dropped} dropped sharing a prompt with the field), "
             f"field {len(field)}; fit_router {time.monotonic() - t0:.0f} s",
             "offline router: the artifact's own profile for "
             + (", ".join(m for m in models if m not in unknown) or "no model")
             + "; mean known profile for " + (", ".join(unknown) or "no model"))
    return Setup(models, z, field_t.quality, cost, est, start, choice, has_cost, notes)
