"""Fit a `RouterModel` from an `OutcomeTable` (training only: imports scikit-learn/scipy lazily).

Steps: fit the featurizer (idf, dense scaling); the joint fit (`joint`): a text basis from a
randomized SVD of the training prompts' n-gram features, then one L-BFGS fit of a shared map onto
`rank` latent skills, every model's abilities and bias, and per-source / per-(model, source) bias
offsets when the rows' sources are given; fold the map into the projection (standardised on the
training prompts); fit each model's output-length head (ridge on z) and its per-character prices
(least squares on recorded costs). Deterministic for fixed inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from .data import OutcomeRecord, OutcomeTable
from .ensemble import fold_ensemble
from .features import DENSE_NAMES, Featurizer, HashingFeaturizer
from .joint import JointProblem, Penalties, fit_params, refit_offsets, source_index, text_basis
from .model import RouterModel, to_f32

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix  # type: ignore[import-untyped, import-not-found, unused-ignore]

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TrainConfig:
    """Training knobs: inverse L2 strength `c` of the skill map and abilities (as sklearn's C), number
    of latent skills `rank`, size of the text basis (and the most prompts its SVD reads), L2
    strengths of the per-(model, source) and per-source offsets, L-BFGS iterations, ridge strength
    for the length heads, tiers of known models; `source_weights`: a multiplier on the loss of each
    named source's outcomes (the rest 1), e.g. to up-weight the source the router is meant for;
    `basis_seeds`: one joint fit per text-basis seed, averaged (variance reduction);
    `dense_l2_by_name`: per named dense feature, its extra L2 strength in place of `dense_l2`."""

    c: float = 0.1
    rank: int = 16
    basis: int = 256
    basis_rows: int = 4000
    #: 100, not ~0: unpenalised offsets absorb what a model is good at on a whole source as a constant,
    #: so its abilities never carry it to other sources (docs/benchmarks.md, issue 13, sessions 19-20).
    offset_l2: float = 100.0
    source_l2: float = 1.0
    dense_l2: float = 30.0
    max_iter: int = 300
    length_ridge: float = 1.0
    tiers: Mapping[str, str] = field(default_factory=dict)
    source_weights: Mapping[str, float] = field(default_factory=dict)
    #: Seeds of the text basis; more than one trains one joint fit per seed and folds them into one
    #: router that averages their logits (`ensemble.fold_ensemble`).
    basis_seeds: tuple[int, ...] = (0,)
    #: Per dense (structural) feature name, its extra L2 instead of `dense_l2` (e.g. a larger one on the
    #: version-2 features only, `features.DENSE_NAMES_V2`); names must be the featurizer's.
    dense_l2_by_name: Mapping[str, float] = field(default_factory=dict)
    #: When set, the biases and offsets are refitted at this per-(model, source) offset L2 after the
    #: joint fit, with the skill map and abilities held (`joint.refit_offsets`): abilities learned with
    #: the offsets held near 0 (`offset_l2`), biases served with each source's own calibration.
    served_offset_l2: float | None = 0.01


def dense_strengths(config: TrainConfig, dense_dim: int) -> float | F64:
    """The extra L2 on each of the featurizer's `dense_dim` dense columns: `dense_l2`, or per column
    when `dense_l2_by_name` names some (a plain float when it names none). The columns are
    `features.DENSE_NAMES` (the hashing featurizer's, also embeddings + hashing) or none."""
    if not config.dense_l2_by_name:
        return config.dense_l2
    names = DENSE_NAMES if dense_dim == len(DENSE_NAMES) else ()
    unknown = sorted(set(config.dense_l2_by_name) - set(names))
    if unknown:
        raise ValueError(f"dense_l2_by_name names features the featurizer lacks: {unknown}")
    out: F64 = np.asarray([config.dense_l2_by_name.get(n, config.dense_l2) for n in names], dtype=np.float64)
    return out


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
               featurizer: Featurizer | None = None, sources: Sequence[str] | None = None) -> RouterModel:
    """Train the predictor for every model in `table` (see the module docstring). `sources`: each
    row's source (its grader), for the per-source offsets; None = one source. With several
    `config.basis_seeds`, the fold of one fit per seed (`fit_members`, `ensemble.fold_ensemble`)."""
    return fold_ensemble(fit_members(table, config, featurizer, sources))


def fit_members(table: OutcomeTable, config: TrainConfig | None = None,
                featurizer: Featurizer | None = None, sources: Sequence[str] | None = None
                ) -> list[RouterModel]:
    """One router per `config.basis_seeds` (same featurizer, prices and data; only the text basis's
    seed differs), featurizing the prompts once."""
    config = config or TrainConfig()
    if not config.basis_seeds:
        raise ValueError("basis_seeds is empty")
    feat = (featurizer if featurizer is not None else HashingFeaturizer()).fit(table.prompts)
    x, dense = sparse_features(feat, table.prompts)
    src, names = source_index(list(sources) if sources is not None else [""] * len(table.prompts))
    if len(src) != len(table.prompts):
        raise ValueError(f"{len(src)} sources for {len(table.prompts)} prompts")
    p_in, p_out = char_prices(table.prompts, table.cost, table.output_chars)
    members = []
    for seed in config.basis_seeds:
        projection, latent_mean, abilities, biases, z = _joint_fit(table, config, x, dense, src, names, seed)
        lengths, length_biases = length_heads(z, table.output_chars, config.length_ridge)
        members.append(RouterModel(
            featurizer=feat, projection=to_f32(projection), latent_mean=to_f32(latent_mean),
            models=table.models, abilities=to_f32(abilities), biases=to_f32(biases),
            lengths=to_f32(lengths), length_biases=to_f32(length_biases), input_prices=to_f32(p_in),
            output_prices=to_f32(p_out), tiers=tuple(config.tiers.get(m, "") for m in table.models)))
    return members


def _joint_fit(table: OutcomeTable, config: TrainConfig, x: csr_matrix, dense: F64,
               src: npt.NDArray[np.int64], names: tuple[str, ...], seed: int
               ) -> tuple[F64, F64, F64, F64, F64]:
    """One joint fit with the text basis of `seed`, in served form: projection (standardised on the
    training prompts), latent mean, abilities, served biases, and the training prompts' z."""
    basis = text_basis(x, config.basis, config.basis_rows, seed=seed)
    u = np.asarray(x @ basis, dtype=np.float64)
    penalties = Penalties(1.0 / config.c, config.offset_l2, config.source_l2,
                          dense_strengths(config, dense.shape[1]))
    weights = [float(config.source_weights.get(n, 1.0)) for n in names] if config.source_weights else None
    problem = JointProblem(u, dense, table.quality, src, names)
    params = fit_params(problem, config.rank, penalties, config.max_iter, weights=weights)
    if config.served_offset_l2 is not None:
        params = refit_offsets(params, problem, replace(penalties, model_offset=config.served_offset_l2),
                               config.max_iter, weights=weights)
    k = params.w.shape[1]
    scores = u @ params.w
    std = scores.std(axis=0)
    std[std < 1e-12] = 1.0
    projection, latent_mean = basis @ params.w / std, scores.mean(axis=0) / std
    skills = params.abilities[:, :k] * std
    abilities = np.hstack([skills, params.abilities[:, k:]])
    z = np.hstack([scores / std - latent_mean, dense])
    biases = params.served_bias(table.quality, src) + skills @ latent_mean
    return projection, latent_mean, abilities, biases, z


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
