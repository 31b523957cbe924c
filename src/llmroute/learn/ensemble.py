"""Fold an ensemble of joint fits into one `RouterModel` (issue 13: variance reduction).

K routers trained on the same data and featurizer but with different text bases (`TrainConfig.
basis_seeds`) differ by the randomized SVD's draw alone; averaging their logits removes most of
that noise. Each router's logit is linear in its latent vector up to the sigmoid,

    η_k(x) = b_k + A_k^text · (P_kᵀ x − μ_k) + A_k^dense · dense(x),

so the mean over k is itself one router of the same form: the projections side by side
(sparse_dim × Σ rank_k), the latent means concatenated, each text-ability block divided by K, the
dense abilities and the biases averaged. The output-length heads (log-linear in z) fold the same
way, which averages their log-lengths. Serving stays one projection and dot products: the cost
grows with the total rank, the artifact with K projections.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .features import FloatArray
from .model import RouterModel, to_f32


def _same_featurizer(models: Sequence[RouterModel]) -> None:
    first = models[0].featurizer
    for other in models[1:]:
        feat = other.featurizer
        if feat.name != first.name or feat.config() != first.config():
            raise ValueError("ensemble members use different featurizers")
        state, ref = feat.state(), first.state()
        if state.keys() != ref.keys() or any(not np.array_equal(state[k], ref[k]) for k in ref):
            raise ValueError("ensemble members' featurizers were fitted differently")


def _fold_heads(heads: Sequence[FloatArray], ranks: Sequence[int]) -> FloatArray:
    """Per-model weights on the folded latent vector: each member's text block / K, then the mean
    of the dense blocks."""
    k = len(heads)
    text = [h[:, :r] / k for h, r in zip(heads, ranks, strict=True)]
    dense = np.mean([h[:, r:] for h, r in zip(heads, ranks, strict=True)], axis=0)
    return to_f32(np.hstack([*text, dense]))


def fold_ensemble(models: Sequence[RouterModel]) -> RouterModel:
    """One router whose logits (and log output lengths) are the mean of `models`'. The members must
    share featurizer and models (names and order); prices and tiers are taken from the first."""
    if not models:
        raise ValueError("an ensemble needs at least one model")
    if len(models) == 1:
        return models[0]
    first = models[0]
    if any(m.models != first.models for m in models[1:]):
        raise ValueError("ensemble members know different models")
    _same_featurizer(models)
    ranks = [int(m.projection.shape[1]) for m in models]
    return RouterModel(
        featurizer=first.featurizer,
        projection=to_f32(np.hstack([m.projection for m in models])),
        latent_mean=to_f32(np.concatenate([m.latent_mean for m in models])),
        models=first.models,
        abilities=_fold_heads([m.abilities for m in models], ranks),
        biases=to_f32(np.mean([m.biases for m in models], axis=0)),
        lengths=_fold_heads([m.lengths for m in models], ranks),
        length_biases=to_f32(np.mean([m.length_biases for m in models], axis=0)),
        input_prices=first.input_prices, output_prices=first.output_prices, tiers=first.tiers)
