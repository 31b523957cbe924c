"""Fit a `RouterModel` from an `OutcomeTable` (training only: imports scikit-learn/scipy lazily).

Steps: fit the featurizer (idf, dense scaling); one L2-regularised logistic regression per model on
[hashed n-grams, structural features] (rows where that model's outcome is known); factor the
models' n-gram weights by SVD into a shared projection onto `rank` latent skills (standardised on
the training prompts) and per-model abilities; fit each model's output-length head (ridge on z)
and its per-character prices (least squares on recorded costs). Deterministic for fixed inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .data import OutcomeRecord, OutcomeTable
from .features import Featurizer, HashingFeaturizer
from .model import RouterModel, to_f32

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix  # type: ignore[import-untyped, import-not-found, unused-ignore]

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TrainConfig:
    """Training knobs: inverse L2 strength `c` of the per-model regressions, number of latent
    skills `rank`, ridge strength for the length heads, tiers of known models."""

    c: float = 0.1
    rank: int = 16
    length_ridge: float = 1.0
    tiers: Mapping[str, str] = field(default_factory=dict)


def sparse_features(featurizer: Featurizer, texts: tuple[str, ...] | list[str]
                    ) -> tuple[csr_matrix, F64]:
    """Featurize many texts: a CSR matrix of the sparse block and an array of the dense block."""
    from scipy.sparse import csr_matrix  # type: ignore[import-untyped, import-not-found, unused-ignore]

    batch = getattr(featurizer, "transform_many", None)     # batched encoders (sentence embeddings)
    rows = list(batch(texts)) if batch is not None else [featurizer.transform(t) for t in texts]
    indptr = np.cumsum([0] + [len(r.indices) for r in rows])
    data = np.concatenate([r.values for r in rows]) if rows else np.zeros(0, dtype=np.float32)
    idx = np.concatenate([r.indices for r in rows]) if rows else np.zeros(0, dtype=np.int64)
    matrix = csr_matrix((data.astype(np.float64), idx, indptr), shape=(len(rows), featurizer.sparse_dim))
    matrix.sum_duplicates()
    dense = np.asarray([r.dense for r in rows], dtype=np.float64).reshape(len(rows), featurizer.dense_dim)
    return matrix, dense


def _logit(p: float) -> float:
    p = min(max(p, 1e-3), 1 - 1e-3)
    return float(np.log(p / (1 - p)))


def _fit_one(x: Any, y: F64, c: float) -> tuple[F64, float]:
    """Weights and intercept of one model's logistic regression. Fractional qualities count as
    a weighted pair of rows (label 1 with weight y, label 0 with weight 1 - y)."""
    from scipy.sparse import vstack  # type: ignore[import-untyped, import-not-found, unused-ignore]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped, import-not-found, unused-ignore]

    if len(y) == 0 or float(y.min()) == float(y.max()):
        return np.zeros(x.shape[1]), _logit(float(y.mean()) if len(y) else 0.5)
    reg = LogisticRegression(C=c, max_iter=5000, tol=1e-6)
    if np.all((y == 0) | (y == 1)):
        reg.fit(x, y.astype(np.int64))
    else:
        labels = np.concatenate([np.ones(len(y)), np.zeros(len(y))]).astype(np.int64)
        reg.fit(vstack([x, x]).tocsr(), labels, sample_weight=np.concatenate([y, 1 - y]))
    return reg.coef_[0].astype(np.float64), float(reg.intercept_[0])


def per_model_weights(x: csr_matrix, dense: F64, quality: F64, c: float) -> tuple[F64, F64]:
    """Logistic weights (M × (sparse+dense)) and intercepts (M) of each model's outcome."""
    from scipy.sparse import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
        csr_matrix,
        hstack,
    )

    full = hstack([x, csr_matrix(dense)]).tocsr()
    weights = np.zeros((quality.shape[1], full.shape[1]))
    intercepts = np.zeros(quality.shape[1])
    for j in range(quality.shape[1]):
        known = ~np.isnan(quality[:, j])
        weights[j], intercepts[j] = _fit_one(full[known], quality[known, j], c)
    return weights, intercepts


def factor(x: csr_matrix, sparse_weights: F64, rank: int) -> tuple[F64, F64, F64]:
    """SVD of the models' n-gram weights: projection (D × K, z standardised on `x`), its mean
    offset (K) and the models' latent abilities (M × K) — abilities · z reproduces weights · x."""
    u, s, vt = np.linalg.svd(sparse_weights, full_matrices=False)
    keep = int(min(rank, int(np.sum(s > 1e-8 * max(s.max(initial=0.0), 1e-300)))))
    keep = max(keep, 1)
    basis = vt[:keep].T                                   # D × K, orthonormal columns
    sign = np.sign(basis[np.abs(basis).argmax(axis=0), np.arange(keep)])  # deterministic signs
    basis, u = basis * sign, u[:, :keep] * sign
    scores = np.asarray(x @ basis)
    mean, std = scores.mean(axis=0), scores.std(axis=0)
    std[std < 1e-12] = 1.0
    return basis / std, mean / std, u * s[:keep] * std


def length_heads(z: F64, output_chars: F64, ridge: float) -> tuple[F64, F64]:
    """Per model: ridge fit of log(1 + answer chars) on z; models without data get the average."""
    m, d = output_chars.shape[1], z.shape[1]
    w, b, seen = np.zeros((m, d)), np.zeros(m), np.zeros(m, dtype=bool)
    design = np.hstack([z, np.ones((len(z), 1))])
    penalty = ridge * np.eye(d + 1)
    penalty[-1, -1] = 0.0
    for j in range(m):
        known = ~np.isnan(output_chars[:, j])
        if known.sum() < 2:
            continue
        a, y = design[known], np.log1p(output_chars[known, j])
        coef = np.linalg.solve(a.T @ a + penalty, a.T @ y)
        resid = y - a @ coef
        w[j], b[j], seen[j] = coef[:-1], coef[-1] + 0.5 * float(resid.var()), True
    if seen.any() and not seen.all():
        w[~seen], b[~seen] = w[seen].mean(axis=0), b[seen].mean()
    return w, b


def char_prices(prompts: tuple[str, ...], cost: F64, output_chars: F64) -> tuple[F64, F64]:
    """Per model: USD per prompt char and per answer char, least squares (≥ 0) on recorded costs."""
    chars = np.asarray([len(p) for p in prompts], dtype=np.float64)
    p_in, p_out = np.full(cost.shape[1], np.nan), np.full(cost.shape[1], np.nan)
    for j in range(cost.shape[1]):
        known = ~np.isnan(cost[:, j]) & ~np.isnan(output_chars[:, j])
        if known.sum() < 2:
            continue
        a = np.stack([chars[known], output_chars[known, j]], axis=1)
        coef, *_ = np.linalg.lstsq(a, cost[known, j], rcond=None)
        p_in[j], p_out[j] = max(float(coef[0]), 0.0), max(float(coef[1]), 0.0)
    return p_in, p_out


def fit_router(table: OutcomeTable, config: TrainConfig | None = None,
               featurizer: Featurizer | None = None) -> RouterModel:
    """Train the predictor for every model in `table` (see the module docstring)."""
    config = config or TrainConfig()
    feat = (featurizer if featurizer is not None else HashingFeaturizer()).fit(table.prompts)
    x, dense = sparse_features(feat, table.prompts)
    weights, intercepts = per_model_weights(x, dense, table.quality, config.c)
    projection, latent_mean, skills = factor(x, weights[:, : feat.sparse_dim], config.rank)
    abilities = np.hstack([skills, weights[:, feat.sparse_dim:]])
    z = np.hstack([np.asarray(x @ projection) - latent_mean, dense])
    lengths, length_biases = length_heads(z, table.output_chars, config.length_ridge)
    p_in, p_out = char_prices(table.prompts, table.cost, table.output_chars)
    return RouterModel(
        featurizer=feat, projection=to_f32(projection), latent_mean=to_f32(latent_mean), models=table.models,
        abilities=to_f32(abilities), biases=to_f32(intercepts + skills @ latent_mean),
        lengths=to_f32(lengths),
        length_biases=to_f32(length_biases), input_prices=to_f32(p_in), output_prices=to_f32(p_out),
        tiers=tuple(config.tiers.get(m, "") for m in table.models))


def out_of_fold(records: Sequence[OutcomeRecord], models: Sequence[str], *,
                also: Sequence[OutcomeRecord] = (), folds: int = 5, seed: int = 0,
                config: TrainConfig | None = None,
                progress: Callable[[int, int], None] | None = None) -> tuple[F64, F64]:
    """P(good) and expected cost of `models` for every record, each from a router that never saw
    it: records split into `folds` at random (`seed`), each fold predicted by a router trained on
    the other folds plus `also`. For calibrating or judging a recipe without a separate test set."""
    fold = np.random.default_rng(seed).integers(0, folds, len(records))
    p, est = np.zeros((len(records), len(models))), np.zeros((len(records), len(models)))
    for k in range(folds):
        rest = [r for r, f in zip(records, fold, strict=True) if f != k]
        router = fit_router(OutcomeTable.of([*rest, *also]), config).select(list(models))
        held = tuple(r.prompt for r, f in zip(records, fold, strict=True) if f == k)
        p[fold == k], est[fold == k] = router.predict_many(held, list(models))
        if progress is not None:
            progress(k + 1, folds)
    return p, est
