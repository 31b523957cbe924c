"""The numbers behind learning online (`online.py`): the logistic function, the design vector, the
one-dimensional Laplace step and the assumed-density-filtering update of a Gaussian posterior on a
weighted logistic observation (alone, and split with a term every model shares), and the prior
covariance. Pure functions on numpy arrays; see `online.py`'s docstring for the rule."""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

#: Default prior variance added to every ability coordinate (not the bias): see `prior_covariance`.
ABILITY_VAR: Final = 0.0


def sigmoid(x: F64 | float) -> F64:
    """The logistic function (numerically safe)."""
    out: F64 = 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))
    return out


def design(z: npt.ArrayLike) -> F64:
    """x = [z, 1] for one latent vector (the bias is the last coordinate of θ)."""
    zz = np.asarray(z, dtype=np.float64).ravel()
    return np.concatenate((zz, [1.0]))


def logit_map(m: float, v: float, y: float, w: float, steps: int = 30) -> float:
    """argmax over a of w·[y log σ(a) + (1 − y) log(1 − σ(a))] − (a − m)²/(2v), by Newton (concave)."""
    a = m
    for _ in range(steps):
        p = float(sigmoid(a))
        grad = w * (y - p) - (a - m) / v
        hess = -w * p * (1.0 - p) - 1.0 / v
        step = grad / hess
        a -= step
        if abs(step) < 1e-12:
            break
    return a


def prior_covariance(spread: F64, prior_scale: float = 1.0, ability_var: float = ABILITY_VAR) -> F64:
    """The online prior covariance of [ability, bias]: `prior_scale` × `spread` (the covariance over
    the artifact's known models, `abilities.prior`) plus `ability_var` on each ability coordinate.

    The spread between models is almost all in the bias (on the bundled artifact 2.5 of its trace
    of 3.2; the next eigenvalue is 0.06): what all models share (which prompts are hard) has no
    spread between models. With that prior alone a model's posterior can only learn that it is worse
    *everywhere*; fed back only on the prompts it is routed to (harder ones, say), it learns that, loses
    more prompts, is routed harder ones still, and the router overshoots to another model (held-out
    MMLU: gpt-4's P(good) 0.66 → 0.52 while fed prompts where its real rate was 0.45). `ability_var`
    lets the posterior place such evidence on the prompts' latent directions instead."""
    k = spread.shape[0]
    floor = np.full(k, float(ability_var))
    floor[-1] = 0.0
    out: F64 = prior_scale * spread + np.diag(floor)
    return out


def ability_moment(means: F64) -> F64:
    """The pool's second moment of ability, K × K with the bias row and column 0: the mean over the
    models (rows of `means`, bias last) of a·aᵀ. A term with this covariance moves every model's logit
    along the directions the models' abilities use, in their units: what makes a prompt hard for all
    of them (`OnlineProfiles.starting`'s `shared_ability`)."""
    a = means[:, :-1]
    k = means.shape[1]
    out: F64 = np.zeros((k, k))
    if len(a):
        out[:-1, :-1] = a.T @ a / len(a)
    return out


def adf_update(mean: F64, cov: F64, x: F64, y: float, w: float, offset: float = 0.0
               ) -> tuple[F64, F64]:
    """One Laplace / assumed-density-filtering step of N(mean, cov) on a weighted logistic
    observation of quality `y` at design vector `x` (see the module docstring), the logit being
    θ·x + `offset` (a fixed shared term). Returns new arrays."""
    if w <= 0.0:
        return mean.copy(), cov.copy()
    s = cov @ x
    v = float(x @ s)
    if v <= 1e-300:
        return mean.copy(), cov.copy()
    m = float(x @ mean) + offset
    a = logit_map(m, v, y, w)
    p = float(sigmoid(a))
    lam = w * p * (1.0 - p)
    new_mean = mean + s * ((a - m) / v)
    new_cov = cov - np.outer(s, s) * (lam / (1.0 + lam * v))
    new_cov = 0.5 * (new_cov + new_cov.T)          # keep it exactly symmetric
    return new_mean, new_cov


def adf_update_shared(mean: F64, cov: F64, smean: F64, scov: F64, x: F64, y: float, w: float
                      ) -> tuple[F64, F64, F64, F64]:
    """`adf_update` of a logit a = (θ + δ)·x, θ ~ N(mean, cov) the model's own term and δ ~ N(smean,
    scov) the shared one, independent: the same one-dimensional Laplace step, carried to each term
    in proportion to its covariance (their cross-covariance is dropped: factorised ADF)."""
    s, ss = cov @ x, scov @ x
    v = float(x @ s + x @ ss)
    if w <= 0.0 or v <= 1e-300:
        return mean.copy(), cov.copy(), smean.copy(), scov.copy()
    m = float(x @ mean + x @ smean)
    a = logit_map(m, v, y, w)
    p = float(sigmoid(a))
    lam = w * p * (1.0 - p)
    step, shrink = (a - m) / v, lam / (1.0 + lam * v)
    new_cov, new_scov = cov - np.outer(s, s) * shrink, scov - np.outer(ss, ss) * shrink
    return (mean + s * step, 0.5 * (new_cov + new_cov.T), smean + ss * step,
            0.5 * (new_scov + new_scov.T))
