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

Bounded influence: each observation's weight is clipped to [0, 1], and a rater is a minority voice:
its total weight on a model is at most `rater_floor` plus `rater_share` of the weight every other
rater has given that model, and never more than `rater_cap` (`budget`; further feedback from that
rater on that model is ignored until others have rated it more). Anonymous feedback (rater None: no
key and no user, or a rater the operator trusts) is not capped, and counts as others' weight. With
the defaults (a quarter of one feedback, a tenth of the others', 10) one rater alone moves the
bundled artifact's prior about as far as a quarter of one honest feedback (P(good) 0.82 → 0.73 at
the widest prompts measured), and among many others its share of a model's evidence tends to a tenth
of theirs (~9% of the whole), however much it sends. Why not only an absolute cap: the prior is wide
(v₀ ≈ 2.7, a logit sd of 1.6), so one feedback moves a fresh model from 0.82 to 0.52, and the old
cap alone (10 feedbacks) let one rater's zeros take it to 0.15. Since |â − m| ≤ w·v (the Newton
condition (â − m)/v = w(y − σ(â))) and Σ only shrinks, a rater of total weight W moves the logit of
any prompt x' by at most W · sqrt(v₀(x') · maxᵢ v₀(xᵢ)) (v₀: prior variance of the logit; xᵢ: the
rater's prompts), and P(good) by a quarter of that: `influence_bound`. With the shared term (below),
a rater's weight into it has the same budget across all models (beyond that its feedback updates the
model's own term only). Its own terms carry (1 − s) of the prior and the shared one s, so a model's
logit moves by at most (√(1 − s) + √s) ≤ √2 times the bound (once through its own term if the rater
rated it, once through the shared one); a model the rater never rated moves through the shared term
only (the bound times √s). See `tests/learn/test_online_stable.py` and `test_online_raters.py`.

Predictions use the posterior mean; `thompson` draws each model's logit from its posterior for one
prompt (exact Thompson sampling for that prompt). `Exploration` sends a configurable share of requests
(default 0) to the Thompson choice among allowed models (by default among those the mean would not
choose: top-two sampling), never when the request says not to explore.

Everything here is pure (no I/O, no globals; randomness comes from the caller's generator) and the
state is plain arrays that round-trip through `to_dict` / `from_dict` (lists of floats), so a gateway
can keep it in shared state or the ledger. Updates are order-dependent (ADF): replicas should apply
feedback through one writer, or each keep its own copy and reload the writer's state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from .abilities import prior
from .model import ModelProfile, RouterModel, to_f32

# exploration lives in `online_explore`, the update's arithmetic in `online_update`; re-exported so
# callers import them from here
from .online_explore import STRATEGIES as STRATEGIES
from .online_explore import Decision as Decision
from .online_explore import Exploration as Exploration
from .online_explore import Pick as Pick
from .online_update import ABILITY_VAR as ABILITY_VAR
from .online_update import ability_moment as ability_moment
from .online_update import adf_update as adf_update
from .online_update import adf_update_shared as adf_update_shared
from .online_update import design as design
from .online_update import logit_map as logit_map
from .online_update import prior_covariance as prior_covariance
from .online_update import sigmoid as sigmoid

F64 = npt.NDArray[np.float64]

#: Default cap on one rater's total feedback weight per model.
RATER_CAP: Final = 10.0
#: Default weight one rater may give a model before anyone else has rated it (a quarter of one feedback).
RATER_FLOOR: Final = 0.25
#: Default share of the other raters' weight on a model that one rater may add to its floor.
RATER_SHARE: Final = 0.1
#: Default share of the prior covariance on the term every model shares (see `OnlineProfiles`).
SHARED: Final = 0.25
#: `rater_weight`'s entry for a rater's weight into the shared term (all models together).
SHARED_RATER_KEY: Final = "*shared*"
#: Serialisation format version of `OnlineProfiles.to_dict` (1: no shared term; 2: no rater floor,
#: share or weight totals; both still read).
STATE_VERSION: Final = 3


def shared_for(shared: float | None, explore: float) -> float:
    """The shared term's share of the prior: `shared` when set, else `SHARED` when the pool explores
    and 0 when it does not. The split between a model's own term and the shared one is learnt by
    comparing models on like prompts, which exploring provides; without it a model's failures
    must lower it *against* the models not tried yet, or a greedy learner never moves on
    (llmrouter, held-out router, seed 0: the non-exploring learner's field quality 0.545 → 0.497
    with a shared share of 0.5; docs/benchmarks.md)."""
    return (SHARED if explore > 0 else 0.0) if shared is None else shared


@dataclass
class OnlineProfiles:
    """Per-model Gaussian posteriors over [ability, bias], updated one feedback at a time.

    `means` is M × K, `covs` M × K × K (K = latent dim + 1, bias last), `rater_weight` maps a rater to
    the feedback weight it has used per model (for its budget: `rater_floor`, `rater_share`,
    `rater_cap`), `model_weight` the weight every rater (anonymous ones too) has given each model,
    `shared_weight` the weight into the shared term. Mutable: `update` changes it in place.

    Optionally (`shared_cov` set) a term δ ~ N(`shared_mean`, `shared_cov`) common to every model:
    model m's logit is (θ_m + δ)·x. A router feeds each model back on the prompts it routes to it —
    the strong model the hard ones, the cheap one the easy ones — and without δ each model's own
    θ (whose prior is almost all bias) takes what those prompts have in common as its own level:
    the strong model looks worse everywhere, loses prompts, is fed harder ones still, and the
    router overshoots (held-out MMLU: gpt-4's P(good) 0.66 → 0.52). δ takes a share of each
    residual for every model, which cancels when models are compared on one prompt.
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
    shared_mean: F64 | None = None
    shared_cov: F64 | None = None
    shared_prior: F64 | None = None          # what `shared_cov` relaxes towards when forgetting
    rater_floor: float = RATER_FLOOR
    rater_share: float = RATER_SHARE
    model_weight: F64 = field(default_factory=lambda: np.zeros(0))
    shared_weight: float = 0.0

    def __post_init__(self) -> None:
        m = len(self.models)
        if self.means.ndim != 2 or self.means.shape[0] != m:
            raise ValueError(f"means must be {m} × K, got {self.means.shape}")
        k = self.means.shape[1]
        if self.covs.shape != (m, k, k):
            raise ValueError(f"covs must be {m} × {k} × {k}, got {self.covs.shape}")
        if self.n_updates.shape != (m,):
            self.n_updates = np.zeros(m)
        if self.model_weight.shape != (m,):
            self.model_weight = np.zeros(m)
        if not (self.rater_cap > 0 and self.rater_floor > 0 and 0.0 <= self.rater_share <= 1.0):
            raise ValueError(f"rater cap and floor must be > 0 and share in [0, 1], got "
                             f"{self.rater_cap}, {self.rater_floor}, {self.rater_share}")
        if not 0.0 <= self.forget < 1.0:
            raise ValueError(f"forget must be in [0, 1), got {self.forget}")
        if self.forget > 0 and (self.prior_cov is None or self.prior_cov.shape != (k, k)):
            raise ValueError(f"forgetting needs a {k} × {k} prior covariance")
        if self.shared_cov is not None:
            if self.shared_cov.shape != (k, k):
                raise ValueError(f"shared covariance must be {k} × {k}, got {self.shared_cov.shape}")
            if self.shared_mean is None or self.shared_mean.shape != (k,):
                self.shared_mean = np.zeros(k)
            if self.shared_prior is None:
                self.shared_prior = self.shared_cov.copy()

    # ------------------------------------------------------------------ building

    @classmethod
    def from_router(cls, router: RouterModel, models: Sequence[str] | None = None, *,
                    prior_scale: float = 1.0, rater_cap: float = RATER_CAP,
                    forget: float = 0.0, ability_var: float = ABILITY_VAR,
                    shared: float = SHARED, rater_floor: float = RATER_FLOOR,
                    rater_share: float = RATER_SHARE, shared_ability: float = 0.0) -> OnlineProfiles:
        """Start from `router`'s profiles of `models` (default all) as means, with `starting`'s
        split of `prior_covariance` of the covariance of [ability, bias] over all the router's known
        models (`abilities.prior`)."""
        names = tuple(router.models if models is None else models)
        rows = [router.index(n) for n in names]
        means = np.hstack([router.abilities[rows], router.biases[rows, None]]).astype(np.float64)
        cov = prior_covariance(prior(router)[1], prior_scale, ability_var)
        return cls.starting(names, means, cov, rater_cap=rater_cap, forget=forget, shared=shared,
                            rater_floor=rater_floor, rater_share=rater_share,
                            shared_ability=shared_ability)

    @classmethod
    def starting(cls, names: Sequence[str], means: F64, cov: F64, *, rater_cap: float = RATER_CAP,
                 forget: float = 0.0, shared: float = SHARED, rater_floor: float = RATER_FLOOR,
                 rater_share: float = RATER_SHARE, shared_ability: float = 0.0) -> OnlineProfiles:
        """Posteriors at `means` (M × K) whose logit prior covariance is `cov` for every model: a
        `shared` share of it on the common term δ (0: none), the rest on each model's own; plus
        `shared_ability` times the pool's `ability_moment` on δ (0: none), so what makes prompts hard
        for every model is learnt from all of their feedback."""
        if not 0.0 <= shared < 1.0:
            raise ValueError(f"shared must be in [0, 1), got {shared}")
        if not 0.0 <= shared_ability <= 10.0:
            raise ValueError(f"shared_ability must be in [0, 10], got {shared_ability}")
        own = (1.0 - shared) * cov
        covs = np.repeat(own[None, :, :], len(names), axis=0)
        scov = shared * cov if shared > 0 else None
        if shared_ability > 0:
            shape = shared_ability * ability_moment(means)
            scov = shape if scov is None else scov + shape
        return cls(tuple(names), means, covs, rater_cap, forget=forget, prior_cov=own,
                   shared_cov=scov, rater_floor=rater_floor, rater_share=rater_share)

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

    def budget(self, key: str, rater: str) -> float:
        """The most weight `rater` may have given `key` (a model, or `SHARED_RATER_KEY`: the shared
        term) by now: `rater_floor` plus `rater_share` of what every other rater has given it,
        at most `rater_cap`. It grows only as others rate, so one rater stays a minority voice."""
        used = self.rater_weight.get(rater, {}).get(key, 0.0)
        total = self.shared_weight if key == SHARED_RATER_KEY else float(self.model_weight[self.index(key)])
        return min(self.rater_cap, self.rater_floor + self.rater_share * max(total - used, 0.0))

    def allowance(self, model: str, rater: str | None, weight: float) -> float:
        """The weight a feedback of `weight` from `rater` on `model` may still carry: clipped to
        [0, 1] and to what is left of the rater's `budget` (none for an anonymous rater, None)."""
        w = min(max(float(weight), 0.0), 1.0)
        if rater is None:
            return w
        used = self.rater_weight.get(rater, {}).get(model, 0.0)
        return max(0.0, min(w, self.budget(model, rater) - used))

    def update(self, model: str, z: npt.ArrayLike, quality: float, weight: float = 1.0,
               rater: str | None = None, shared: bool = True) -> float:
        """Apply one feedback (quality in [0, 1] of `model`'s answer to the prompt with latent `z`);
        returns the weight it actually carried (0 when the rater's cap is spent). `shared` false:
        the feedback updates the model's own term only, not the shared one."""
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
            if self.shared_cov is not None and self.shared_prior is not None:
                self.shared_cov = (1.0 - self.forget) * self.shared_cov + self.forget * self.shared_prior
        # the shared term moves every model: a rater's weight into it is capped across all models
        shares = (shared and self.shared_cov is not None and self.shared_mean is not None
                  and self.allowance(SHARED_RATER_KEY, rater, w) >= w)
        if shares and self.shared_cov is not None and self.shared_mean is not None:
            (self.means[j], self.covs[j], self.shared_mean,
             self.shared_cov) = adf_update_shared(self.means[j], self.covs[j], self.shared_mean,
                                                  self.shared_cov, x, y, w)
        else:
            offset = 0.0 if self.shared_mean is None else float(self.shared_mean @ x)
            self.means[j], self.covs[j] = adf_update(self.means[j], self.covs[j], x, y, w, offset)
        self.n_updates[j] += 1
        self.model_weight[j] += w
        if shares:
            self.shared_weight += w
        if rater is not None:
            per = self.rater_weight.setdefault(rater, {})
            per[model] = per.get(model, 0.0) + w
            if shares:
                per[SHARED_RATER_KEY] = per.get(SHARED_RATER_KEY, 0.0) + w
        return w

    # ------------------------------------------------------------------ predicting

    def _shared_at(self, x: F64) -> tuple[float, float]:
        """Mean and variance of the shared term's logit δ·x (0, 0 without one)."""
        if self.shared_cov is None or self.shared_mean is None:
            return 0.0, 0.0
        return float(self.shared_mean @ x), max(float(x @ self.shared_cov @ x), 0.0)

    def own_moments(self, z: npt.ArrayLike, rows: Sequence[int] | None = None
                    ) -> tuple[F64, F64, float]:
        """Each model's logit mean at one prompt, the variance of its own term, and the shared
        term's variance (one number: it is the same draw for every model)."""
        x = design(z)
        idx = np.arange(len(self.models)) if rows is None else np.asarray(rows, dtype=np.int64)
        s_mean, s_var = self._shared_at(x)
        mean: F64 = self.means[idx] @ x + s_mean
        var: F64 = np.einsum("i,mij,j->m", x, self.covs[idx], x)
        return mean, np.maximum(var, 0.0), s_var

    def logit_moments(self, z: npt.ArrayLike, rows: Sequence[int] | None = None) -> tuple[F64, F64]:
        """Posterior mean and variance of each model's logit at one prompt."""
        mean, var, s_var = self.own_moments(z, rows)
        return mean, var + s_var

    def p_good(self, z: npt.ArrayLike, rows: Sequence[int] | None = None) -> F64:
        """P(good) of each model (of `rows`, default all) at one prompt, from the posterior mean."""
        x = design(z)
        idx = np.arange(len(self.models)) if rows is None else np.asarray(rows, dtype=np.int64)
        return sigmoid(self.means[idx] @ x + self._shared_at(x)[0])

    def p_upper(self, z: npt.ArrayLike, optimism: float,
                rows: Sequence[int] | None = None) -> F64:
        """P(good) of each model (of `rows`) at one prompt, its logit's mean plus `optimism` times
        how much its own term's sd exceeds the smallest among them: no bonus on day one (one prior
        for all); a model with fewer feedbacks than the best known gets ahead of it when close.
        For the most likely model, the same choice as the upper bound mean + optimism · sd."""
        mean, var, _ = self.own_moments(z, rows)
        sd = np.sqrt(var)
        return sigmoid(mean + optimism * (sd - sd.min()))

    def p_good_many(self, z: npt.ArrayLike) -> F64:
        """P(good) from the posterior means for many prompts (N × M)."""
        zz = np.atleast_2d(np.asarray(z, dtype=np.float64))
        means = self.means if self.shared_mean is None else self.means + self.shared_mean
        return sigmoid(zz @ means[:, :-1].T + means[:, -1])

    def thompson(self, z: npt.ArrayLike, rng: np.random.Generator,
                 rows: Sequence[int] | None = None) -> F64:
        """One Thompson draw of P(good) per model at one prompt: each model's own term from its
        posterior, the shared term drawn once for all (it cannot change which model is better)."""
        mean, var, s_var = self.own_moments(z, rows)
        draw = mean + np.sqrt(var) * rng.standard_normal(len(mean))
        if s_var > 0:
            draw += np.sqrt(s_var) * rng.standard_normal()
        return sigmoid(draw)

    def beat_probability(self, z: npt.ArrayLike, incumbent: int,
                         rows: Sequence[int] | None = None) -> F64:
        """Each model's (of `rows`, default all; `incumbent` indexes them) posterior probability that
        its logit at one prompt exceeds the incumbent's: Φ((m_j − m_i) / √(v_j + v_i)) over the
        own terms (the shared one is the same draw for both, so it cancels); 0.5 for the incumbent."""
        mean, var, _ = self.own_moments(z, rows)
        sd = np.sqrt(var + var[incumbent])
        diff = mean - mean[incumbent]
        scaled = np.divide(diff, sd, out=np.zeros_like(diff), where=sd > 0)
        out: F64 = 0.5 * (1.0 + np.array([math.erf(v) for v in (scaled / math.sqrt(2.0)).tolist()]))
        out[incumbent] = 0.5
        return out

    def influence_bound(self, prior_var_query: float, prior_var_max: float, others: float = 0.0) -> float:
        """Upper bound on how far one rater can move P(good) of one model at a prompt whose prior logit
        variance is `prior_var_query`, when its rated prompts' prior logit variances are at most
        `prior_var_max` and the other raters have given the model `others` of weight (see the module
        docstring)."""
        weight = min(self.rater_cap, self.rater_floor + self.rater_share * others)
        return 0.25 * weight * float(np.sqrt(prior_var_query * prior_var_max))

    def profiles(self, router: RouterModel) -> list[ModelProfile]:
        """`router`'s profiles of these models with ability and bias replaced by the posterior means
        (for `RouterModel.with_profiles`: the live router after learning)."""
        out = []
        means = self.means if self.shared_mean is None else self.means + self.shared_mean
        for j, name in enumerate(self.models):
            base = router.profile(name)
            out.append(ModelProfile(name, to_f32(means[j, :-1]), float(means[j, -1]),
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
            "prior_cov": _listed(self.prior_cov), "shared_mean": _listed(self.shared_mean),
            "shared_cov": _listed(self.shared_cov), "shared_prior": _listed(self.shared_prior),
            "rater_floor": self.rater_floor, "rater_share": self.rater_share,
            "model_weight": self.model_weight.tolist(), "shared_weight": self.shared_weight,
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, object]) -> OnlineProfiles:
        """Inverse of `to_dict` (`ValueError` on another version or malformed state)."""
        if state.get("version") not in (1, 2, STATE_VERSION):
            raise ValueError(f"online state version {state.get('version')!r}, expected {STATE_VERSION}")
        models = state.get("models")
        raters = state.get("rater_weight", {})
        cap = state.get("rater_cap", RATER_CAP)
        if not isinstance(models, list) or not isinstance(raters, dict) or not isinstance(cap, int | float):
            raise ValueError("malformed online state")
        weights = {str(r): {str(m): float(v) for m, v in per.items()} for r, per in raters.items()}
        prior_cov = state.get("prior_cov")
        names = tuple(str(m) for m in models)
        # before version 3 no totals were kept: what the named raters gave (a lower bound)
        totals = state.get("model_weight")
        if totals is None:
            totals = [sum(per.get(m, 0.0) for per in weights.values()) for m in names]
        shared_weight = _number(state, "shared_weight",
                                sum(per.get(SHARED_RATER_KEY, 0.0) for per in weights.values()))
        return cls(names, np.asarray(state["means"], dtype=np.float64),
                   np.asarray(state["covs"], dtype=np.float64), float(cap), weights,
                   np.asarray(state.get("n_updates", [0.0] * len(models)), dtype=np.float64),
                   _number(state, "forget", 0.0), _array(prior_cov), _array(state.get("shared_mean")),
                   _array(state.get("shared_cov")), _array(state.get("shared_prior")),
                   _number(state, "rater_floor", RATER_FLOOR), _number(state, "rater_share", RATER_SHARE),
                   np.asarray(totals, dtype=np.float64), shared_weight)


def _number(state: Mapping[str, object], key: str, default: float) -> float:
    """`state[key]` as a float (`default` when absent; `ValueError` when not a number)."""
    value = state.get(key, default)
    if not isinstance(value, int | float):
        raise ValueError("malformed online state")
    return float(value)


def _listed(a: F64 | None) -> list[object] | None:
    return None if a is None else list(a.tolist())


def _array(value: object) -> F64 | None:
    return None if value is None else np.asarray(value, dtype=np.float64)
