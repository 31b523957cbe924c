"""Learning online (issue 13): feedback updates the router's model profiles as it arrives, no retrain.

Per model, a Gaussian posterior over θ = [ability, bias] (K = latent dim + 1 numbers). It starts at
the model's current profile (mean) with the prior covariance `abilities.prior` gives over all known
models' profiles, times `prior_scale`: how far a model's true profile on new traffic may plausibly be
from its current one is taken to be the spread between models. Each feedback (prompt latent z, quality
y in [0, 1], weight w) updates it by one assumed-density-filtering step on the logistic likelihood
w · [y log σ(a) + (1 − y) log(1 − σ(a))], a = θ · x, x = [z, 1]: the likelihood depends on θ only
through a, so the exact Laplace step is one-dimensional (a few Newton steps on a), then the Gaussian
conditioning of θ on a carries it to every coordinate — closed form, O(K²) per update:

    m = x·μ, v = xᵀΣx, â = argmax w·loglik(a) − (a − m)²/(2v), λ = σ(â)(1 − σ(â))
    μ ← μ + Σx (â − m)/v,  Σ ← Σ − (Σx)(Σx)ᵀ · wλ / (1 + wλv)

Bounded influence: each observation's weight is clipped to [0, 1], and a rater's total weight per
model is capped at `rater_cap` (further feedback from that rater on that model is ignored). Since
|â − m| ≤ w·v (the Newton condition (â − m)/v = w(y − σ(â))) and Σ only shrinks, one rater moves the
logit of any prompt x' by at most `rater_cap` · sqrt(v₀(x') · maxᵢ v₀(xᵢ)) (v₀: prior variance of the
logit; xᵢ: the rater's prompts), and P(good) by a quarter of that: `influence_bound`.

Predictions use the posterior mean; `thompson` draws each model's logit from its posterior for one
prompt (exact Thompson sampling for that prompt). `Exploration` sends a configurable share of requests
(default 0) to the Thompson choice among allowed models, never when the request says not to explore.

Everything here is pure (no I/O, no globals; randomness comes from the caller's generator) and the
state is plain arrays that round-trip through `to_dict` / `from_dict` (lists of floats), so a gateway
can keep it in shared state or the ledger. Updates are order-dependent (ADF): replicas should apply
feedback through one writer, or each keep its own copy and reload the writer's state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from .abilities import prior
from .model import ModelProfile, RouterModel, to_f32

F64 = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Default cap on one rater's total feedback weight per model.
RATER_CAP: Final = 10.0
#: Serialisation format version of `OnlineProfiles.to_dict`.
STATE_VERSION: Final = 1


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


def adf_update(mean: F64, cov: F64, x: F64, y: float, w: float) -> tuple[F64, F64]:
    """One Laplace / assumed-density-filtering step of N(mean, cov) on a weighted logistic
    observation of quality `y` at design vector `x` (see the module docstring). Returns new arrays."""
    if w <= 0.0:
        return mean.copy(), cov.copy()
    s = cov @ x
    v = float(x @ s)
    if v <= 1e-300:
        return mean.copy(), cov.copy()
    m = float(x @ mean)
    a = logit_map(m, v, y, w)
    p = float(sigmoid(a))
    lam = w * p * (1.0 - p)
    new_mean = mean + s * ((a - m) / v)
    new_cov = cov - np.outer(s, s) * (lam / (1.0 + lam * v))
    new_cov = 0.5 * (new_cov + new_cov.T)          # keep it exactly symmetric
    return new_mean, new_cov


@dataclass
class OnlineProfiles:
    """Per-model Gaussian posteriors over [ability, bias], updated one feedback at a time.

    `means` is M × K, `covs` M × K × K (K = latent dim + 1, bias last), `rater_weight` maps a rater to
    the feedback weight it has used per model (for the cap). Mutable: `update` changes it in place.
    """

    models: tuple[str, ...]
    means: F64
    covs: F64
    rater_cap: float = RATER_CAP
    rater_weight: dict[str, dict[str, float]] = field(default_factory=dict)
    n_updates: F64 = field(default_factory=lambda: np.zeros(0))
    #: Forgetting (0 = none): before each applied feedback, every model's covariance relaxes
    #: towards `prior_cov` (K × K): Σ ← (1 − forget) Σ + forget · prior_cov, so a model that looks
    #: worse with confidence in a region regains the uncertainty that sends exploration back to it.
    forget: float = 0.0
    prior_cov: F64 | None = None

    def __post_init__(self) -> None:
        m = len(self.models)
        if self.means.ndim != 2 or self.means.shape[0] != m:
            raise ValueError(f"means must be {m} × K, got {self.means.shape}")
        k = self.means.shape[1]
        if self.covs.shape != (m, k, k):
            raise ValueError(f"covs must be {m} × {k} × {k}, got {self.covs.shape}")
        if self.n_updates.shape != (m,):
            self.n_updates = np.zeros(m)
        if not 0.0 <= self.forget < 1.0:
            raise ValueError(f"forget must be in [0, 1), got {self.forget}")
        if self.forget > 0 and (self.prior_cov is None or self.prior_cov.shape != (k, k)):
            raise ValueError(f"forgetting needs a {k} × {k} prior covariance")

    # ------------------------------------------------------------------ building

    @classmethod
    def from_router(cls, router: RouterModel, models: Sequence[str] | None = None, *,
                    prior_scale: float = 1.0, rater_cap: float = RATER_CAP,
                    forget: float = 0.0) -> OnlineProfiles:
        """Start from `router`'s profiles of `models` (default all) as means, each with the
        covariance of [ability, bias] over all the router's known models (`abilities.prior`) times
        `prior_scale`."""
        names = tuple(router.models if models is None else models)
        rows = [router.index(n) for n in names]
        means = np.hstack([router.abilities[rows], router.biases[rows, None]]).astype(np.float64)
        _, cov = prior(router)
        covs = np.repeat((prior_scale * cov)[None, :, :], len(names), axis=0)
        return cls(names, means, covs, rater_cap, forget=forget, prior_cov=prior_scale * cov)

    def index(self, name: str) -> int:
        """Row of model `name` (`KeyError` when unknown)."""
        try:
            return self.models.index(name)
        except ValueError:
            raise KeyError(f"unknown model {name!r}; known: {', '.join(self.models)}") from None

    @property
    def dim(self) -> int:
        """K: latent dimension + 1 (the bias)."""
        return int(self.means.shape[1])

    # ------------------------------------------------------------------ learning

    def allowance(self, model: str, rater: str | None, weight: float) -> float:
        """The weight a feedback of `weight` from `rater` on `model` may still carry: clipped to
        [0, 1] and to what is left of the rater's cap (no cap for an anonymous rater, None)."""
        w = min(max(float(weight), 0.0), 1.0)
        if rater is None:
            return w
        used = self.rater_weight.get(rater, {}).get(model, 0.0)
        return max(0.0, min(w, self.rater_cap - used))

    def update(self, model: str, z: npt.ArrayLike, quality: float, weight: float = 1.0,
               rater: str | None = None) -> float:
        """Apply one feedback (quality in [0, 1] of `model`'s answer to the prompt with latent `z`);
        returns the weight it actually carried (0 when the rater's cap is spent)."""
        j = self.index(model)
        w = self.allowance(model, rater, weight)
        if w <= 0.0:
            return 0.0
        y = min(max(float(quality), 0.0), 1.0)
        x = design(z)
        if x.shape != (self.dim,):
            raise ValueError(f"latent has {x.size - 1} coordinates, the profiles {self.dim - 1}")
        if self.forget > 0 and self.prior_cov is not None:
            self.covs *= 1.0 - self.forget
            self.covs += self.forget * self.prior_cov
        self.means[j], self.covs[j] = adf_update(self.means[j], self.covs[j], x, y, w)
        self.n_updates[j] += 1
        if rater is not None:
            per = self.rater_weight.setdefault(rater, {})
            per[model] = per.get(model, 0.0) + w
        return w

    # ------------------------------------------------------------------ predicting

    def logit_moments(self, z: npt.ArrayLike, rows: Sequence[int] | None = None) -> tuple[F64, F64]:
        """Posterior mean and variance of each model's logit at one prompt."""
        x = design(z)
        idx = np.arange(len(self.models)) if rows is None else np.asarray(rows, dtype=np.int64)
        mean: F64 = self.means[idx] @ x
        var: F64 = np.einsum("i,mij,j->m", x, self.covs[idx], x)
        return mean, np.maximum(var, 0.0)

    def p_good(self, z: npt.ArrayLike, rows: Sequence[int] | None = None) -> F64:
        """P(good) of each model (of `rows`, default all) at one prompt, from the posterior mean."""
        x = design(z)
        idx = np.arange(len(self.models)) if rows is None else np.asarray(rows, dtype=np.int64)
        return sigmoid(self.means[idx] @ x)

    def p_good_many(self, z: npt.ArrayLike) -> F64:
        """P(good) from the posterior means for many prompts (N × M)."""
        zz = np.atleast_2d(np.asarray(z, dtype=np.float64))
        return sigmoid(zz @ self.means[:, :-1].T + self.means[:, -1])

    def thompson(self, z: npt.ArrayLike, rng: np.random.Generator,
                 rows: Sequence[int] | None = None) -> F64:
        """One Thompson draw of P(good) per model at one prompt: each logit from its posterior."""
        mean, var = self.logit_moments(z, rows)
        return sigmoid(mean + np.sqrt(var) * rng.standard_normal(len(mean)))

    def influence_bound(self, prior_var_query: float, prior_var_max: float) -> float:
        """Upper bound on how far one rater can move P(good) of one model at a prompt whose prior logit
        variance is `prior_var_query`, when its rated prompts' prior logit variances are at most
        `prior_var_max` (see the module docstring)."""
        return 0.25 * self.rater_cap * float(np.sqrt(prior_var_query * prior_var_max))

    def profiles(self, router: RouterModel) -> list[ModelProfile]:
        """`router`'s profiles of these models with ability and bias replaced by the posterior means
        (for `RouterModel.with_profiles`: the live router after learning)."""
        out = []
        for j, name in enumerate(self.models):
            base = router.profile(name)
            out.append(ModelProfile(name, to_f32(self.means[j, :-1]), float(self.means[j, -1]),
                                    base.length, base.length_bias, base.usd_per_input_char,
                                    base.usd_per_output_char, base.tier))
        return out

    # ------------------------------------------------------------------ state

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-able state (lists of floats: exact for float64)."""
        return {
            "version": STATE_VERSION, "models": list(self.models), "means": self.means.tolist(),
            "covs": self.covs.tolist(), "rater_cap": self.rater_cap,
            "rater_weight": {r: dict(per) for r, per in self.rater_weight.items()},
            "n_updates": self.n_updates.tolist(), "forget": self.forget,
            "prior_cov": None if self.prior_cov is None else self.prior_cov.tolist(),
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, object]) -> OnlineProfiles:
        """Inverse of `to_dict` (`ValueError` on another version or malformed state)."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"online state version {state.get('version')!r}, expected {STATE_VERSION}")
        models = state.get("models")
        raters = state.get("rater_weight", {})
        cap = state.get("rater_cap", RATER_CAP)
        if not isinstance(models, list) or not isinstance(raters, dict) or not isinstance(cap, int | float):
            raise ValueError("malformed online state")
        weights = {str(r): {str(m): float(v) for m, v in per.items()} for r, per in raters.items()}
        forget, prior_cov = state.get("forget", 0.0), state.get("prior_cov")
        if not isinstance(forget, int | float):
            raise ValueError("malformed online state")
        return cls(tuple(str(m) for m in models), np.asarray(state["means"], dtype=np.float64),
                   np.asarray(state["covs"], dtype=np.float64), float(cap), weights,
                   np.asarray(state.get("n_updates", [0.0] * len(models)), dtype=np.float64),
                   float(forget),
                   None if prior_cov is None else np.asarray(prior_cov, dtype=np.float64))


# ---------------------------------------------------------------------- exploration

#: A routing policy over one prompt: (P(good), expected cost) of the candidates → chosen index.
Pick = Callable[[F64, F64], int]


@dataclass(frozen=True)
class Decision:
    """A routing decision: the chosen candidate's index, and whether it came from exploration."""

    index: int
    explored: bool


@dataclass(frozen=True)
class Exploration:
    """With probability `share` (default 0: off), route by a Thompson draw of P(good) instead of the
    posterior mean, among the allowed candidates, with the same policy; never when `may_explore` is
    false (a request marked not to explore)."""

    share: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"exploration share must be in [0, 1], got {self.share}")

    def explores(self, rng: np.random.Generator, may_explore: bool = True) -> bool:
        """Whether this request explores: a coin with probability `share` (drawn only when
        exploring is on and allowed)."""
        return may_explore and self.share > 0.0 and bool(rng.random() < self.share)

    def decide(self, p_mean: F64, p_draw: F64, cost: F64, allowed: BoolArray, pick: Pick,
               rng: np.random.Generator, may_explore: bool = True) -> Decision:
        """The choice among `allowed` candidates (arrays over candidates): `pick` on the posterior-mean
        P(good), or — exploring — on the Thompson draw `p_draw`."""
        ok = np.flatnonzero(np.asarray(allowed, dtype=bool))
        if len(ok) == 0:
            raise ValueError("no allowed candidate")
        explore = self.explores(rng, may_explore)
        p = p_draw if explore else p_mean
        i = int(ok[pick(np.asarray(p, dtype=np.float64)[ok], np.asarray(cost, dtype=np.float64)[ok])])
        return Decision(i, explore)
