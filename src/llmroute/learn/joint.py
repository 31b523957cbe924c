"""The joint fit: one latent skill space and every model's abilities learned together, from all sources.

For prompt i of source s and model m, the logit of a good answer is

    η(i, m) = b_m + c_s + d_{m,s} + a_m · [Wᵀ u_i ; dense_i]

* u_i: the prompt's hashed n-gram features (tf-idf) projected onto a text basis (the top `basis`
  right singular vectors of the training prompts' feature matrix, a randomized SVD with a fixed seed);
  W (basis × rank) maps it onto `rank` shared latent skills, learned from every model's outcomes at once.
* dense_i: the featurizer's structural features, passed straight through.
* a_m (rank + dense), b_m: model m's abilities and bias, one vector per model whatever the number of
  sources it appears in (names are tied across sources before training: `sources.ALIASES`).
* c_s: a per-source offset shared by all models (a harsher or kinder grader); d_{m,s}: a per-(model,
  source) offset (L2-penalised toward 0). Offsets are biases, never abilities: they cannot depend on
  the prompt, so a source's grading cannot leak into what the latent skills measure.

The loss is the cross-entropy of the observed qualities (fractional qualities are soft labels,
optionally each source's outcomes reweighted, `balance` and `weights`) plus L2 penalties: ‖W‖² + ‖a‖² at 1/c
(TrainConfig.c, as sklearn's C), the dense part of a at 1/c + `dense_l2` (one strength, or one per
dense column), ‖d‖² at `offset_l2`, ‖c‖² at `source_l2`. Minimised by L-BFGS (scipy) in two
deterministic stages (`fit_params`): the convex full-rank problem, whose SVD starts the low-rank
one. All in dense numpy on each source's block of (its prompts × the models it scores), so a fit
on the whole shared data (≈ 14,000 prompts × 94 models) takes seconds, not the minutes of one sparse
logistic regression per model.

The served model (`RouterModel`) keeps the format of every artifact: projection = basis · W
(standardised on the training prompts); a model's served bias is b_m plus the offsets of its
reference source, the first (in row order) that scored it (`JointParams.served_bias`). With the
offsets held near 0 in the fit (so that skill goes into the abilities), `refit_offsets` refits the
biases and offsets alone, at a smaller L2, before they are served.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class JointProblem:
    """The data of one joint fit: reduced text features `u` (N × r), dense features (N × q),
    qualities (N × M, NaN = unknown) and each row's source index (N, into `sources`)."""

    u: F64
    dense: F64
    quality: F64
    source: I64
    sources: tuple[str, ...]


@dataclass(frozen=True)
class JointParams:
    """Fitted parameters (see the module docstring)."""

    w: F64            # r × K
    abilities: F64    # M × (K + q)
    bias: F64         # M
    source_offset: F64   # S
    model_offset: F64    # S × M

    def served_bias(self, quality: F64, source: I64) -> F64:
        """b_m plus the offsets c_s + d_{m,s} of model m's reference source: the first source, in
        row order, that scored it. A model seen in one source predicts exactly as fitted there, and a
        model shared by several keeps the grading of the first (e.g. RouterBench, listed first
        when training the bundled artifact), so it is compared with that source's other models
        under one grader."""
        seen = ~np.isnan(quality)
        first_row = np.where(seen.any(axis=0), seen.argmax(axis=0), 0)
        ref = source[first_row] if len(source) else np.zeros(quality.shape[1], dtype=np.int64)
        cols = np.arange(quality.shape[1])
        out: F64 = self.bias + self.source_offset[ref] + self.model_offset[ref, cols]
        return out


@dataclass(frozen=True)
class Penalties:
    """L2 strengths: text map and abilities, per-(model, source) offsets, per-source offsets."""

    weights: float
    model_offset: float
    source_offset: float
    #: Extra L2 on the abilities of the dense (structural) features: one strength for all, or one
    #: per dense column (e.g. a larger one on some group of features only).
    dense: float | F64 = 0.0


def text_basis(x: object, size: int, max_rows: int = 4000, seed: int = 0) -> F64:
    """The top `size` right singular vectors (D × size) of the sparse feature matrix `x` (randomized
    SVD, fixed seed: deterministic), computed on at most `max_rows` of its rows (drawn with `seed`).
    Fewer vectors when there are fewer rows or columns."""
    from sklearn.utils.extmath import randomized_svd  # type: ignore[import-untyped, import-not-found, unused-ignore]

    shape = getattr(x, "shape", (0, 0))
    rows = np.arange(shape[0])
    if shape[0] > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(shape[0], max_rows, replace=False))
    sample = x[rows]  # type: ignore[index]
    k = int(max(1, min(size, len(rows) - 1, shape[1] - 1)))
    with single_threaded():
        _, _, vt = randomized_svd(sample, k, n_iter=2, random_state=seed)
    basis: F64 = np.ascontiguousarray(vt.T, dtype=np.float64)
    return basis


def single_threaded() -> AbstractContextManager[object]:
    """BLAS limited to one thread: these matrices are small, and on a busy machine two BLAS threads
    per process made the fit five times slower (36.8 s against 7.4 s for one L-BFGS run)."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped, import-not-found, unused-ignore]

    limits: AbstractContextManager[object] = threadpool_limits(limits=1, user_api="blas")
    return limits


def _sigmoid(x: F64) -> F64:
    out: F64 = 0.5 * (1.0 + np.tanh(0.5 * x))
    return out


@dataclass(frozen=True)
class _Layout:
    """Sizes: basis r, skills k, dense q, models m, sources s. `full_rank`: no map W (the abilities
    act on the basis itself, k = r), the convex first stage of `fit_params`."""

    r: int
    k: int
    q: int
    m: int
    s: int
    full_rank: bool = False

    def split(self, theta: F64) -> JointParams:
        w_size = 0 if self.full_rank else self.r * self.k
        sizes = [w_size, self.m * (self.k + self.q), self.m, self.s, self.s * self.m]
        parts = np.split(theta, np.cumsum(sizes)[:-1])
        return JointParams(parts[0].reshape(self.r, -1 if w_size else 0),
                           parts[1].reshape(self.m, self.k + self.q),
                           parts[2], parts[3], parts[4].reshape(self.s, self.m))

    @staticmethod
    def join(p: JointParams) -> F64:
        return np.concatenate([p.w.ravel(), p.abilities.ravel(), p.bias, p.source_offset,
                               p.model_offset.ravel()])


@dataclass(frozen=True)
class _Block:
    """The rows of one source and the models scored there: the objective works on these dense
    blocks, not on the mostly empty N × M matrix."""

    source: int
    rows: I64
    cols: I64
    y: F64
    seen: npt.NDArray[np.bool_]
    weight: float


def _blocks(problem: JointProblem, balance: float, weights: Sequence[float] | None = None) -> list[_Block]:
    """One block per source. Each outcome of source s weighs (mean outcomes per source / outcomes
    of s) ** `balance`: 0 = every outcome counts the same, 1 = every source counts the same; times
    `weights[s]` when given (one multiplier per source, e.g. to up-weight the target source)."""
    if weights is not None and len(weights) != len(problem.sources):
        raise ValueError(f"{len(weights)} weights for {len(problem.sources)} sources")
    parts = []
    for s in range(len(problem.sources)):
        rows = np.flatnonzero(problem.source == s)
        sub = problem.quality[rows]
        cols = np.flatnonzero((~np.isnan(sub)).any(axis=0))
        if len(rows) and len(cols):
            block = sub[:, cols]
            parts.append((s, rows, cols, block, ~np.isnan(block)))
    counts = [int(seen.sum()) for *_, seen in parts]
    mean = float(np.mean(counts)) if counts else 1.0
    return [_Block(s, rows, cols, np.where(seen, block, 0.0), seen,
                   (mean / n) ** balance * (1.0 if weights is None else float(weights[s])))
            for (s, rows, cols, block, seen), n in zip(parts, counts, strict=True)]


def _block_loss(blk: _Block, eta: F64) -> tuple[float, F64]:
    """One block's weighted cross-entropy at logits `eta`, and its gradient in `eta` (0 where unseen)."""
    loss = blk.weight * float(np.sum(np.where(blk.seen, np.logaddexp(0.0, eta) - blk.y * eta, 0.0)))
    grad: F64 = np.where(blk.seen, blk.weight * (_sigmoid(eta) - blk.y), 0.0)
    return loss, grad


def _add_bias_grads(blk: _Block, col_sums: F64, grad_b: F64, grad_c: F64, grad_d: F64) -> None:
    """Add one block's per-model gradient sums to the bias, source-offset and model-offset gradients."""
    grad_b[blk.cols] += col_sums
    grad_d[blk.source, blk.cols] += col_sums
    grad_c[blk.source] += float(col_sums.sum())


def objective(theta: F64, problem: JointProblem, layout: _Layout, penalties: Penalties,
              blocks: Sequence[_Block]) -> tuple[float, F64]:
    """Penalised cross-entropy and its gradient (the L-BFGS callback)."""
    p = layout.split(theta)
    z = np.hstack([problem.u if layout.full_rank else problem.u @ p.w, problem.dense])
    strength = np.full(layout.k + layout.q, penalties.weights)
    strength[layout.k:] += penalties.dense
    grad_a = strength * p.abilities
    grad_z = np.zeros((len(z), 0 if layout.full_rank else layout.k))
    grad_b = np.zeros(layout.m)
    grad_d = penalties.model_offset * p.model_offset
    grad_c = penalties.source_offset * p.source_offset
    loss = 0.5 * (penalties.weights * float(np.sum(p.w ** 2)) + float(np.sum(strength * p.abilities ** 2))
                  + penalties.model_offset * float(np.sum(p.model_offset ** 2))
                  + penalties.source_offset * float(np.sum(p.source_offset ** 2)))
    for blk in blocks:
        zb, ab = z[blk.rows], p.abilities[blk.cols]
        shift = p.bias[blk.cols] + p.source_offset[blk.source] + p.model_offset[blk.source, blk.cols]
        eta = zb @ ab.T + shift
        block_loss, g = _block_loss(blk, eta)
        loss += block_loss
        grad_a[blk.cols] += g.T @ zb
        if not layout.full_rank:
            grad_z[blk.rows] += g @ ab[:, : layout.k]
        _add_bias_grads(blk, g.sum(axis=0), grad_b, grad_c, grad_d)
    grad_w = p.w if layout.full_rank else problem.u.T @ grad_z + penalties.weights * p.w
    return loss, _Layout.join(JointParams(grad_w, grad_a, grad_b, grad_c, grad_d))


def _base_bias(quality: F64) -> F64:
    """Each model's logit of its mean quality (0.5 when it has no outcome)."""
    seen = ~np.isnan(quality)
    total = np.where(seen, quality, 0.0).sum(axis=0)
    mean = np.clip(np.where(seen.any(axis=0), total / np.maximum(seen.sum(axis=0), 1), 0.5), 1e-3, 1 - 1e-3)
    out: F64 = np.log(mean / (1 - mean))
    return out


def _minimize(start: JointParams, problem: JointProblem, layout: _Layout, penalties: Penalties,
              blocks: Sequence[_Block], max_iter: int) -> JointParams:
    from scipy.optimize import minimize  # type: ignore[import-untyped, import-not-found, unused-ignore]

    with single_threaded():
        result = minimize(objective, _Layout.join(start), jac=True, method="L-BFGS-B",
                          args=(problem, layout, penalties, blocks),
                          options={"maxiter": max_iter, "gtol": 1e-6})
    return layout.split(np.asarray(result.x, dtype=np.float64))


def fit_params(problem: JointProblem, rank: int, penalties: Penalties, max_iter: int = 300,
               balance: float = 0.0, weights: Sequence[float] | None = None) -> JointParams:
    """Two L-BFGS stages, deterministic. First the convex full-rank problem: every model's
    abilities on the whole text basis (no shared map). Its ability matrix, factored by SVD, gives the
    start of the second: the shared map W onto `rank` skills (its top right singular vectors) and each
    model's abilities on them; then everything is refined jointly. `balance`, `weights`: how much
    each source's outcomes count (`_blocks`)."""
    r, q, m, s = problem.u.shape[1], problem.dense.shape[1], problem.quality.shape[1], len(problem.sources)
    k = min(rank, r, max(m, 1))
    blocks = _blocks(problem, balance, weights)
    full = _Layout(r, r, q, m, s, full_rank=True)
    first = _minimize(JointParams(np.zeros((r, 0)), np.zeros((m, r + q)), _base_bias(problem.quality),
                                  np.zeros(s), np.zeros((s, m))), problem, full, penalties, blocks, max_iter)
    u_svd, sv, vt = np.linalg.svd(first.abilities[:, :r], full_matrices=False)
    sign = np.sign(vt[:k, :][np.arange(k), np.abs(vt[:k, :]).argmax(axis=1)])   # deterministic signs
    sign[sign == 0] = 1.0
    root = np.sqrt(sv[:k])
    w0 = vt[:k].T * sign * root                      # balanced factors: A W^T = U S V^T
    a0 = np.hstack([u_svd[:, :k] * sign * root, first.abilities[:, r:]])
    start = JointParams(w0, a0, first.bias, first.source_offset, first.model_offset)
    return _minimize(start, problem, _Layout(r, k, q, m, s), penalties, blocks, max_iter)


def refit_offsets(params: JointParams, problem: JointProblem, penalties: Penalties, max_iter: int = 300,
                  balance: float = 0.0, weights: Sequence[float] | None = None) -> JointParams:
    """The biases b, per-source offsets c and per-(model, source) offsets d refitted (L-BFGS, convex)
    at `penalties`' offset strengths, with the map W and the abilities a held as fitted. A fit whose
    offsets were held near 0 (so that what a model is good at had to go into its abilities) thereby
    gets back each source's own calibration for the biases it serves (`served_bias`)."""
    from scipy.optimize import minimize  # type: ignore[import-untyped, import-not-found, unused-ignore]

    m, s = problem.quality.shape[1], len(problem.sources)
    blocks = _blocks(problem, balance, weights)
    z = np.hstack([problem.u @ params.w, problem.dense])
    fixed = [z[blk.rows] @ params.abilities[blk.cols].T for blk in blocks]

    def loss_grad(theta: F64) -> tuple[float, F64]:
        bias, c, d = theta[:m], theta[m: m + s], theta[m + s:].reshape(s, m)
        grad_b, grad_c, grad_d = np.zeros(m), penalties.source_offset * c, penalties.model_offset * d
        loss = 0.5 * (penalties.source_offset * float(c @ c) + penalties.model_offset * float(np.sum(d * d)))
        for blk, eta0 in zip(blocks, fixed, strict=True):
            eta = eta0 + bias[blk.cols] + c[blk.source] + d[blk.source, blk.cols]
            block_loss, g = _block_loss(blk, eta)
            loss += block_loss
            _add_bias_grads(blk, g.sum(axis=0), grad_b, grad_c, grad_d)
        return loss, np.concatenate([grad_b, grad_c, grad_d.ravel()])

    start = np.concatenate([params.bias, params.source_offset, params.model_offset.ravel()])
    with single_threaded():
        result = minimize(loss_grad, start, jac=True, method="L-BFGS-B",
                          options={"maxiter": max_iter, "gtol": 1e-6})
    theta = np.asarray(result.x, dtype=np.float64)
    return JointParams(params.w, params.abilities, theta[:m], theta[m: m + s], theta[m + s:].reshape(s, m))


def source_index(row_sources: Sequence[str]) -> tuple[I64, tuple[str, ...]]:
    """Each row's index into the sorted distinct sources, and those sources."""
    names = tuple(sorted(set(row_sources)))
    lookup = {n: i for i, n in enumerate(names)}
    return np.asarray([lookup[s] for s in row_sources], dtype=np.int64), names
