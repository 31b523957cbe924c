"""Profiles for models the router was not trained on: from a few labelled outcomes, or from a tier.

Known models' [ability, bias] vectors define a Gaussian prior (their mean and covariance, restricted
to one tier when a tier is given). `fit_profile` finds the MAP profile under that prior given a
handful of (prompt, quality) outcomes — pure numpy Newton steps, fine at serving time. With no
outcomes it returns the prior mean: that is `profile_from_tier`, a typical model of the tier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from .model import ModelProfile, RouterModel

F64 = npt.NDArray[np.float64]


def _reference(model: RouterModel, tier: str | None) -> npt.NDArray[np.int64]:
    """Rows of the reference models: those of `tier`, or every model when the tier is None or ""."""
    if not tier:
        return np.arange(len(model.models))
    rows = np.asarray([i for i, t in enumerate(model.tiers) if t == tier], dtype=np.int64)
    if len(rows) == 0:
        known = sorted({t for t in model.tiers if t})
        raise KeyError(f"no known model has tier {tier!r}; tiers: {', '.join(known) or 'none'}")
    return rows


def prior(model: RouterModel, tier: str | None = None) -> tuple[F64, F64]:
    """Mean and covariance of [ability, bias] over known models (of `tier`, if given)."""
    rows = _reference(model, tier)
    theta = np.hstack([model.abilities[rows], model.biases[rows, None]]).astype(np.float64)
    everyone = np.hstack([model.abilities, model.biases[:, None]]).astype(np.float64)
    spread = everyone.var(axis=0) if len(everyone) > 1 else np.ones(everyone.shape[1])
    cov = np.cov(theta, rowvar=False) if len(rows) > 1 else np.zeros((theta.shape[1],) * 2)
    # shrink towards the all-model diagonal so the prior is proper with few reference models
    cov = np.atleast_2d(cov) + np.diag(0.25 * spread + 1e-3)
    return theta.mean(axis=0), cov


def _map_logistic(x: F64, y: F64, mean: F64, precision: F64, steps: int = 25) -> F64:
    """argmax of sum log-likelihood − ½ (θ−mean)ᵀ precision (θ−mean), by damped Newton."""
    theta = mean.copy()
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(x @ theta)))
        grad = x.T @ (p - y) + precision @ (theta - mean)
        hess = (x.T * (p * (1 - p))) @ x + precision
        step = np.linalg.solve(hess, grad)
        theta -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return theta


def _length_bias(model: RouterModel, z: F64, length: F64, default: float,
                 output_chars: Sequence[float] | None) -> float:
    if not output_chars:
        return default
    resid = np.log1p(np.asarray(output_chars, dtype=np.float64)) - z @ length
    return float(resid.mean() + 0.5 * resid.var())


def fit_profile(model: RouterModel, name: str, prompts: Sequence[str], quality: Sequence[float], *,
                tier: str | None = None, strength: float = 0.3,
                output_chars: Sequence[float] | None = None) -> ModelProfile:
    """Profile of a new model from its outcomes on a few prompts (quality in [0, 1]).

    The prior is the known models of `tier` (all models when None or ""); `strength` scales its weight.
    `output_chars` (answer lengths on the same prompts) adjust the output-length head. Prices are
    left unknown: set them with `ModelProfile.with_prices`.
    """
    if len(prompts) != len(quality):
        raise ValueError(f"{len(prompts)} prompts but {len(quality)} outcomes")
    if output_chars is not None and len(output_chars) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(output_chars)} output lengths")
    mean, cov = prior(model, tier)
    z = model.latent_many(prompts).astype(np.float64)
    if len(prompts):
        x = np.hstack([z, np.ones((len(z), 1))])
        y = np.clip(np.asarray(quality, dtype=np.float64), 0.0, 1.0)
        precision = np.asarray(strength * np.linalg.inv(cov), dtype=np.float64)
        theta = _map_logistic(x, y, mean, precision)
    else:
        theta = mean
    rows = _reference(model, tier)
    length = model.lengths[rows].astype(np.float64).mean(axis=0)
    length_bias = _length_bias(model, z, length, float(model.length_biases[rows].mean()), output_chars)
    d = model.latent_dim
    return ModelProfile(name, theta[:d].astype(np.float32), float(theta[d]), length.astype(np.float32),
                        length_bias, tier=tier or "")


def profile_from_tier(model: RouterModel, name: str, tier: str) -> ModelProfile:
    """A typical model of `tier`: the mean profile of the known models of that tier."""
    return fit_profile(model, name, [], [], tier=tier)


def resolve_profile(model: RouterModel, name: str, *, alias: str | None = None,
                    tier: str | None = None) -> ModelProfile:
    """The profile a gateway model `name` should use: the artifact's model called `alias` (or `name`)
    when there is one, else a typical model of `tier`; `KeyError` when neither is available."""
    for known in (alias, name):
        if known is not None and known in model.models:
            return replace(model.profile(known), name=name)
    if tier is not None:
        return profile_from_tier(model, name, tier)
    raise KeyError(f"model {name!r} is not in the router artifact and has no tier to borrow from")
