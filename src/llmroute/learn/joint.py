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

The loss is the cross-entropy of the observed qualities (fractional qualities are soft labels) plus
L2 penalties: ‖W‖² + ‖a‖² at 1/c (TrainConfig.c, as sklearn's C), ‖d‖² at `offset_l2`, ‖c‖² at
`source_l2`; minimised by L-BFGS (scipy) from a deterministic start. All in dense numpy on an
N × basis matrix, so a fit on the whole shared data (≈ 15,000 prompts × 94 models) takes seconds,
not the minutes of one sparse logistic regression per model.

The served model (`RouterModel`) keeps the format of every artifact: projection = basis · W
(standardised on the training prompts); a model's served bias is b_m plus its offsets averaged over
its own training outcomes (so a model seen in one source predicts exactly as fitted there).
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
        """b_m plus model m's offsets c_s + d_{m,s} averaged over its observed outcomes."""
        seen = ~np.isnan(quality)
        onehot = np.zeros((len(source), len(self.source_offset)))
        onehot[np.arange(len(source)), source] = 1.0
        counts = onehot.T @ seen.astype(np.float64)            # S × M observed outcomes
        total = counts.sum(axis=0)
        offsets = self.source_offset[:, None] + self.model_offset
        mean = (counts * offsets).sum(axis=0) / np.maximum(total, 1.0)
        out: F64 = self.bias + mean
        return out


@dataclass(frozen=True)
class Penalties:
    """L2 strengths: text map and abilities, per-(model, source) offsets, per-source offsets."""

    weights: float
    model_offset: float
    source_offset: float


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
    r: int
    k: int
    q: int
    m: int
    s: int

    def split(self, theta: F64) -> JointParams:
        sizes = [self.r * self.k, self.m * (self.k + self.q), self.m, self.s, self.s * self.m]
        parts = np.split(theta, np.cumsum(sizes)[:-1])
        return JointParams(parts[0].reshape(self.r, self.k), parts[1].reshape(self.m, self.k + self.q),
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


def _blocks(problem: JointProblem) -> list[_Block]:
    out = []
    for s in range(len(problem.sources)):
        rows = np.flatnonzero(problem.source == s)
        sub = problem.quality[rows]
        cols = np.flatnonzero((~np.isnan(sub)).any(axis=0))
        if len(rows) and len(cols):
            block = sub[:, cols]
            seen = ~np.isnan(block)
            out.append(_Block(s, rows, cols, np.where(seen, block, 0.0), seen))
    return out


def objective(theta: F64, problem: JointProblem, layout: _Layout, penalties: Penalties,
              blocks: Sequence[_Block]) -> tuple[float, F64]:
    """Penalised cross-entropy and its gradient (the L-BFGS callback)."""
    p = layout.split(theta)
    z = np.hstack([problem.u @ p.w, problem.dense])
    grad_a = penalties.weights * p.abilities
    grad_z = np.zeros((len(z), layout.k))
    grad_b = np.zeros(layout.m)
    grad_d = penalties.model_offset * p.model_offset
    grad_c = penalties.source_offset * p.source_offset
    loss = 0.5 * (penalties.weights * (float(np.sum(p.w ** 2)) + float(np.sum(p.abilities ** 2)))
                  + penalties.model_offset * float(np.sum(p.model_offset ** 2))
                  + penalties.source_offset * float(np.sum(p.source_offset ** 2)))
    for blk in blocks:
        zb, ab = z[blk.rows], p.abilities[blk.cols]
        shift = p.bias[blk.cols] + p.source_offset[blk.source] + p.model_offset[blk.source, blk.cols]
        eta = zb @ ab.T + shift
        loss += float(np.sum(np.where(blk.seen, np.logaddexp(0.0, eta) - blk.y * eta, 0.0)))
        g = np.where(blk.seen, _sigmoid(eta) - blk.y, 0.0)
        grad_a[blk.cols] += g.T @ zb
        grad_z[blk.rows] += g @ ab[:, : layout.k]
        col_sums = g.sum(axis=0)
        grad_b[blk.cols] += col_sums
        grad_d[blk.source, blk.cols] += col_sums
        grad_c[blk.source] += float(col_sums.sum())
    grad_w = problem.u.T @ grad_z + penalties.weights * p.w
    return loss, _Layout.join(JointParams(grad_w, grad_a, grad_b, grad_c, grad_d))


def initial(problem: JointProblem, rank: int) -> JointParams:
    """Deterministic start: W picks the first `rank` basis directions (unit variance), abilities 0,
    each model's bias at the logit of its mean quality, offsets 0."""
    r, q = problem.u.shape[1], problem.dense.shape[1]
    k = min(rank, r)
    w = np.zeros((r, k))
    std = problem.u[:, :k].std(axis=0)
    w[np.arange(k), np.arange(k)] = 1.0 / np.maximum(std, 1e-12)
    mean = np.nan_to_num(np.nanmean(np.where(np.isnan(problem.quality), np.nan, problem.quality), axis=0),
                         nan=0.5) if problem.quality.size else np.zeros(0)
    mean = np.clip(mean, 1e-3, 1 - 1e-3)
    m, s = problem.quality.shape[1], len(problem.sources)
    return JointParams(w, np.zeros((m, k + q)), np.log(mean / (1 - mean)), np.zeros(s), np.zeros((s, m)))


def fit_params(problem: JointProblem, rank: int, penalties: Penalties, max_iter: int = 300) -> JointParams:
    """Minimise `objective` by L-BFGS from `initial` (deterministic)."""
    from scipy.optimize import minimize  # type: ignore[import-untyped, import-not-found, unused-ignore]

    start = initial(problem, rank)
    layout = _Layout(problem.u.shape[1], start.w.shape[1], problem.dense.shape[1],
                     problem.quality.shape[1], len(problem.sources))
    with single_threaded():
        result = minimize(objective, _Layout.join(start), jac=True, method="L-BFGS-B",
                          args=(problem, layout, penalties, _blocks(problem)),
                          options={"maxiter": max_iter, "gtol": 1e-6})
    return layout.split(np.asarray(result.x, dtype=np.float64))


def source_index(row_sources: Sequence[str]) -> tuple[I64, tuple[str, ...]]:
    """Each row's index into the sorted distinct sources, and those sources."""
    names = tuple(sorted(set(row_sources)))
    lookup = {n: i for i, n in enumerate(names)}
    return np.asarray([lookup[s] for s in row_sources], dtype=np.int64), names
