"""Learned routing: predict P(good answer | prompt, model) and pick the cheapest model good enough.

Serving needs only numpy: `load_default()` (or `load(path)`) gives a `RouterModel`; `predict(text)`
gives each model's P(good) and expected cost; `policy.by_target` / `policy.by_tradeoff` choose.
Training (`fit_router`) needs scikit-learn (the `learn` extra), imported only when called.

    data        outcome/label records -> OutcomeTable
    features    text -> hashed n-grams + structure (the Featurizer protocol)
    model       RouterModel / ModelProfile: latent skills, abilities, costs
    abilities   profiles for unseen models (few outcomes, or a tier)
    train       fit a RouterModel (scikit-learn, lazily)
    artifact    versioned .npz + .json save/load
    policy      choose by quality target / by λ / strong-weak share; sweeps; APGR
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import policy
from .abilities import fit_profile, profile_from_tier, resolve_profile
from .artifact import ArtifactError, load, load_default, save
from .data import DataError, OutcomeRecord, OutcomeTable, load_records
from .features import FeatureRow, Featurizer, HashingFeaturizer
from .model import ModelProfile, Prediction, RouterModel
from .policy import Choice, by_target, by_tradeoff

if TYPE_CHECKING:
    from .train import TrainConfig, fit_router


def __getattr__(name: str) -> object:
    """`TrainConfig` and `fit_router` import the training code (and the joint fit) on first use:
    a serving process never pays for them."""
    if name in {"TrainConfig", "fit_router"}:
        from . import train

        return getattr(train, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "ArtifactError",
    "Choice",
    "DataError",
    "FeatureRow",
    "Featurizer",
    "HashingFeaturizer",
    "ModelProfile",
    "OutcomeRecord",
    "OutcomeTable",
    "Prediction",
    "RouterModel",
    "TrainConfig",
    "by_target",
    "by_tradeoff",
    "fit_profile",
    "fit_router",
    "load",
    "load_default",
    "load_records",
    "policy",
    "profile_from_tier",
    "resolve_profile",
    "save",
]
