"""The learned router's predictor: P(good answer | prompt, model) and expected cost, in pure numpy.

A prompt becomes a latent vector z = [projection-of-sparse-features (standardised); dense
structural features]. Every model is a `ModelProfile`: an ability per latent coordinate plus a
bias (logit of a good answer = bias + ability · z), an output-length head (expected answer
length in characters, log-linear in z) and per-character prices. Models never seen in training get a
profile from a few labelled outcomes or from their tier (see `abilities`).
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from .features import FeatureRow, Featurizer, FloatArray
from .features_kernel import KernelLatent, KernelRows, PoolFn
from .features_kernel import latent as kernel_latent
from .features_kernel import pool as kernel_pool

F64 = npt.NDArray[np.float64]
ProjectionArray = npt.NDArray[np.float32] | npt.NDArray[np.float16]


@dataclass(frozen=True)
class ModelProfile:
    """A model described by a few numbers.

    `ability` has one entry per latent coordinate (`RouterModel.latent_dim`); the logit of a good
    answer is `bias + ability · z`. Expected output characters are `exp(length_bias + length · z)`.
    Prices are USD per character of prompt / answer (NaN when unknown); `tier` may be empty.
    """

    name: str
    ability: FloatArray
    bias: float
    length: FloatArray
    length_bias: float
    usd_per_input_char: float = float("nan")
    usd_per_output_char: float = float("nan")
    tier: str = ""

    def with_prices(self, input_per_m_tokens: float, output_per_m_tokens: float,
                    chars_per_token: float = 4.0) -> ModelProfile:
        """A copy priced from USD per million tokens (≈ `chars_per_token` characters a token)."""
        scale = 1e6 * chars_per_token
        return replace(self, usd_per_input_char=input_per_m_tokens / scale,
                       usd_per_output_char=output_per_m_tokens / scale)


@dataclass(frozen=True)
class Prediction:
    """For one prompt and each of `models`: P(good answer), expected cost (USD) and answer length."""

    models: tuple[str, ...]
    p_good: F64
    expected_cost: F64
    expected_output_chars: F64

    def best(self) -> tuple[str, float]:
        """The model most likely to answer well and that probability."""
        i = int(np.argmax(self.p_good))
        return self.models[i], float(self.p_good[i])


def to_f32(values: object) -> FloatArray:
    """A contiguous float32 copy (or view) of `values`."""
    return np.ascontiguousarray(values, dtype=np.float32)


def _sigmoid(x: F64) -> F64:
    out: F64 = 0.5 * (1.0 + np.tanh(0.5 * x))
    return out


#: How many pools' tables a model keeps (a bound, not a tuning knob: configs name a few pools).
_MAX_POOLS = 64


class _PoolTables(NamedTuple):
    """`RouterModel`'s arrays for one pool of models, in the pool's order, float64 (abilities and
    lengths transposed, as the matrix products want them; the float32 vectors widened once, which
    is exact: the sums and products numpy computed in float64 from them are the same numbers)."""

    abilities: F64
    biases: F64
    lengths: F64
    length_biases: F64
    input_prices: F64
    output_prices: F64


@dataclass(frozen=True)
class RouterModel:
    """The trained predictor: featurizer, projection onto latent skills, and model profiles.

    Arrays: `projection` (sparse_dim × K), `latent_mean` (K), `abilities`/`lengths`
    (M × latent_dim), `biases`/`length_biases`/`input_prices`/`output_prices` (M).
    """

    featurizer: Featurizer
    #: float32, or float16 as a loaded artifact stores it (rows widened to float32 at use)
    projection: ProjectionArray
    latent_mean: FloatArray
    models: tuple[str, ...]
    abilities: FloatArray
    biases: FloatArray
    lengths: FloatArray
    length_biases: FloatArray
    input_prices: FloatArray
    output_prices: FloatArray
    tiers: tuple[str, ...]
    #: Per pool of models (None: all): the rows and the float64 tables `predict_latent` reads, built
    #: once per pool instead of once per request (the same arrays, so the same results).
    _pools: dict[tuple[str, ...] | None, _PoolTables] = field(
        init=False, repr=False, compare=False, default_factory=dict)
    #: The serving path's latent vectors by the compiled kernel (None: not built, or another featurizer).
    _fast: KernelLatent | None = field(init=False, repr=False, compare=False, default=None)
    #: Per pool, the compiled kernel's predictions (built beside `_pools`' tables, from them).
    _kernel_pools: dict[tuple[str, ...] | None, PoolFn | None] = field(
        init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        rows = getattr(self.featurizer, "kernel", None)   # only the hashing featurizer has one
        if isinstance(rows, KernelRows):
            object.__setattr__(self, "_fast", kernel_latent(rows, self.projection, self.latent_mean))

    @property
    def latent_dim(self) -> int:
        """Length of z (= ability vector length): latent skills + structural features."""
        return int(self.projection.shape[1]) + self.featurizer.dense_dim

    def index(self, name: str) -> int:
        """Row of model `name` (`KeyError` listing the known models when absent)."""
        try:
            return self.models.index(name)
        except ValueError:
            raise KeyError(f"unknown model {name!r}; known: {', '.join(self.models)}") from None

    def latent(self, text: str) -> FloatArray:
        """The prompt's latent vector z."""
        return self._latent_of(self.featurizer.transform(text))

    def _latent_of(self, row: FeatureRow) -> FloatArray:
        rows = self.projection[row.indices].astype(np.float32, copy=False)   # float16 widens exactly
        skills = row.values @ rows - self.latent_mean
        return np.concatenate((skills.astype(np.float32, copy=False), row.dense))

    def latent_many(self, texts: Sequence[str]) -> FloatArray:
        """Latent vectors of many prompts (N × latent_dim)."""
        out = np.zeros((len(texts), self.latent_dim), dtype=np.float32)
        batch = getattr(self.featurizer, "transform_many", None)   # batched encoders (embeddings)
        if batch is not None:
            for i, row in enumerate(batch(texts)):
                out[i] = self._latent_of(row)
            return out
        for i, text in enumerate(texts):
            out[i] = self.latent(text)
        return out

    def _rows(self, models: Sequence[str] | None) -> npt.NDArray[np.int64]:
        if models is None:
            return np.arange(len(self.models))
        return np.asarray([self.index(m) for m in models], dtype=np.int64)

    def predict_latent(self, z: FloatArray, prompt_chars: int | F64,
                       models: Sequence[str] | None = None) -> tuple[F64, F64, F64]:
        """P(good), expected cost and expected output chars from latent vectors (1-D or N × d)."""
        t = self._pool(models)
        zz = np.asarray(z, dtype=np.float64)
        logits = zz @ t.abilities + t.biases
        out_chars = np.exp(zz @ t.lengths + t.length_biases)
        chars: float | F64 = (float(prompt_chars) if isinstance(prompt_chars, int)
                              else np.asarray(prompt_chars, dtype=np.float64))
        if zz.ndim == 2 and isinstance(chars, np.ndarray):
            chars = chars.reshape(-1, 1)
        cost = chars * t.input_prices + out_chars * t.output_prices
        return _sigmoid(logits), cost, out_chars

    def _pool(self, models: Sequence[str] | None) -> _PoolTables:
        key = None if models is None else tuple(models)
        tables = self._pools.get(key)
        if tables is None:
            if len(self._pools) >= _MAX_POOLS:   # pools come from config: a handful; stay bounded
                self._pools.clear()
                self._kernel_pools.clear()
            rows = self._rows(models)
            f64 = np.float64
            arrays = (self.abilities[rows].T.astype(f64), self.biases[rows].astype(f64),
                      self.lengths[rows].T.astype(f64), self.length_biases[rows].astype(f64),
                      self.input_prices[rows].astype(f64), self.output_prices[rows].astype(f64))
            for array in arrays:
                array.setflags(write=False)
            tables = _PoolTables(*arrays)
            self._pools[key] = tables
        return tables

    def serving_latent(self, text: str) -> FloatArray:
        """`latent(text)` for a decision: by the compiled kernel when built (the same features; the
        projection summed in float64, so z may differ from `latent`'s in its last bits)."""
        fast = self._fast
        if fast is not None:
            z = fast.latent(text)
            if z is not None:
                return z
        return self.latent(text)

    def _kernel_pool(self, models: Sequence[str] | None) -> PoolFn | None:
        key = None if models is None else tuple(models)
        if key in self._kernel_pools:
            return self._kernel_pools[key]
        t = self._pool(models)
        made = kernel_pool(t.abilities.T, t.biases, t.lengths.T, t.length_biases, t.input_prices,
                           t.output_prices)
        self._kernel_pools[key] = made
        return made

    def predict(self, text: str, models: Sequence[str] | None = None) -> Prediction:
        """Predictions for one prompt over `models` (default: all, in `self.models` order): by the
        compiled kernel when it is built (the same features; the projection and the pool's products
        summed in float64 in the latent's order, exp/tanh from libm: P(good) within ~1e-7 of
        `predict_latent(latent(text))`), else by numpy."""
        names = self.models if models is None else tuple(models)
        fast = self._fast
        if fast is not None:
            z = fast.latent_bytes(text)
            pool = self._kernel_pool(models)
            if z is not None and pool is not None:
                p, cost, out = np.frombuffer(pool(z, float(len(text))), dtype=np.float64).reshape(3, -1)
                return Prediction(names, p, cost, out)
        p, cost, out = self.predict_latent(self.serving_latent(text), len(text), models)
        return Prediction(names, p, cost, out)

    def predict_rows(self, text: str, models: Sequence[str]) -> tuple[list[float], list[float]] | None:
        """`predict(text, models)`'s P(good) and expected cost as Python floats (the same numbers:
        the kernel's float64 output read once, without the arrays), or None where `predict` would
        not use the kernel (not built, an empty pool, or a text it leaves to the pure path)."""
        fast = self._fast
        if fast is None:
            return None
        features = fast.rows.raw(text)                 # `fast.latent_bytes`, one call fewer
        pool = self._kernel_pool(models)
        if features is None or pool is None:
            return None
        z = fast.project(*features)
        values = array("d", pool(z, float(len(text)))).tolist()     # float64, as np.frombuffer reads
        m = len(values) // 3
        return values[:m], values[m:2 * m]

    def predict_many(self, texts: Sequence[str], models: Sequence[str] | None = None
                     ) -> tuple[F64, F64]:
        """P(good) and expected cost, each N × M (the training/evaluation path)."""
        chars = np.asarray([len(t) for t in texts], dtype=np.float64)
        p, cost, _ = self.predict_latent(self.latent_many(texts), chars, models)
        return p, cost

    def profile(self, name: str) -> ModelProfile:
        """The profile of a known model."""
        i = self.index(name)
        return ModelProfile(name, self.abilities[i].copy(), float(self.biases[i]), self.lengths[i].copy(),
                            float(self.length_biases[i]), float(self.input_prices[i]),
                            float(self.output_prices[i]), self.tiers[i])

    def profiles(self) -> list[ModelProfile]:
        """Profiles of every model, in order."""
        return [self.profile(m) for m in self.models]

    def with_profiles(self, profiles: Sequence[ModelProfile]) -> RouterModel:
        """A copy whose models are exactly `profiles` (add, replace, reorder or drop models)."""
        for p in profiles:
            if p.ability.shape != (self.latent_dim,) or p.length.shape != (self.latent_dim,):
                raise ValueError(f"profile {p.name!r} has the wrong dimension (want {self.latent_dim})")
        d = (len(profiles), self.latent_dim)
        return replace(
            self, models=tuple(p.name for p in profiles),
            abilities=to_f32([p.ability for p in profiles]).reshape(d),
            biases=to_f32([p.bias for p in profiles]),
            lengths=to_f32([p.length for p in profiles]).reshape(d),
            length_biases=to_f32([p.length_bias for p in profiles]),
            input_prices=to_f32([p.usd_per_input_char for p in profiles]),
            output_prices=to_f32([p.usd_per_output_char for p in profiles]),
            tiers=tuple(p.tier for p in profiles))

    def with_model(self, profile: ModelProfile) -> RouterModel:
        """A copy with `profile` added (or replacing the model of the same name)."""
        kept = [p for p in self.profiles() if p.name != profile.name]
        return self.with_profiles([*kept, profile])

    def select(self, names: Sequence[str]) -> RouterModel:
        """A copy restricted to (and ordered as) `names`."""
        return self.with_profiles([self.profile(n) for n in names])
