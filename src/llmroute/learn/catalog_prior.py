"""A profile for a model with no outcomes, from its catalog entry alone (public evidence).

The artifact's known models that also have a price-map entry (`KNOWN_CATALOG_KEYS`, a small
hand-checked table: which LiteLLM entry lists each one's price) teach a ridge regression from catalog
features to the [ability, bias] space:

    x = [log10 USD/1M input, log10 USD/1M output, log2 context window, release year,
         OpenAI?, Anthropic?]

Features are standardised on the known models; a missing context window or release date takes the
known models' mean, and every feature is clamped to the known models' range (a 2025 model is
scored as the newest known one, never extrapolated). The ridge penalty is picked from a fixed grid by
exact leave-one-out error, so the fit is deterministic and has no knobs. The length head is the known
models' mean. Computed at load time from the artifact plus the bundled price snapshot: nothing new is
stored in the artifact, any artifact works (with too few catalogued models, `fit` gives None).

Release dates: a dated snapshot suffix gives its own (`-20240307`); other names look up `RELEASED`
(public launch months, by bare name without snapshot suffix).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..catalog import ModelSpec, resolve_model
from .model import ModelProfile, RouterModel, to_f32
from .names import bare, split_snapshot

F64 = npt.NDArray[np.float64]

#: Artifact model -> the price-map entry that lists its price (first-party where there is one; open
#: models at one host, DeepInfra where it lists them). Models missing here have no catalog entry.
KNOWN_CATALOG_KEYS: Mapping[str, str] = {
    "gpt-3.5-turbo-0125": "gpt-3.5-turbo-0125",
    "gpt-3.5-turbo-1106": "gpt-3.5-turbo-1106",
    "gpt-4-0314": "gpt-4-0314",
    "gpt-4-1106-preview": "gpt-4-1106-preview",
    "gpt-4-turbo-2024-04-09": "gpt-4-turbo-2024-04-09",
    "gpt-4o-2024-05-13": "gpt-4o-2024-05-13",
    "gpt-4o-2024-08-06": "gpt-4o-2024-08-06",
    "gpt-4o-mini-2024-07-18": "gpt-4o-mini-2024-07-18",
    "chatgpt-4o-latest-24-09-07": "chatgpt-4o-latest",
    "o1-mini-2024-09-12": "azure/o1-mini-2024-09-12",
    "o1-preview-2024-09-12": "azure/o1-preview-2024-09-12",
    "claude-3-haiku-20240307": "claude-3-haiku-20240307",
    "claude-3-opus-20240229": "claude-3-opus-20240229",
    "claude-3-sonnet-20240229": "anthropic.claude-3-sonnet-20240229-v1:0",
    "claude-3-5-sonnet-20240620": "snowflake/claude-3-5-sonnet",
    "claude-instant-v1": "anthropic.claude-instant-v1",
    "Mistral-Large-2": "mistral/mistral-large-2407",
    "Meta-Llama-3-8B-Instruct": "deepinfra/meta-llama/Meta-Llama-3-8B-Instruct",
    "Meta-Llama-3.1-70B-Instruct": "deepinfra/meta-llama/Meta-Llama-3.1-70B-Instruct",
    "Meta-Llama-3.1-8B-Instruct": "deepinfra/meta-llama/Meta-Llama-3.1-8B-Instruct",
    "Mixtral-8x7B-Instruct-v0.1": "deepinfra/mistralai/Mixtral-8x7B-Instruct-v0.1",
    "Qwen2.5-72B-Instruct": "deepinfra/Qwen/Qwen2.5-72B-Instruct",
    "Qwen2.5-7B-Instruct": "deepinfra/Qwen/Qwen2.5-7B-Instruct",
    "meta/llama-2-70b-chat": "replicate/meta/llama-2-70b-chat",
    "zero-one-ai/Yi-34B-Chat": "fireworks_ai/accounts/fireworks/models/yi-34b-chat",
    "meta/code-llama-instruct-34b-chat": "fireworks_ai/accounts/fireworks/models/code-llama-34b-instruct",
    "mistralai/mixtral-8x7b-chat": "deepinfra/mistralai/Mixtral-8x7B-Instruct-v0.1",
}

#: Public launch month by bare name (no provider prefix, no dated snapshot suffix, lower case).
RELEASED: Mapping[str, str] = {
    "gpt-3.5-turbo-0125": "2024-01", "gpt-3.5-turbo-1106": "2023-11", "gpt-4-0314": "2023-03",
    "gpt-4-1106-preview": "2023-11", "chatgpt-4o-latest-24-09-07": "2024-09",
    "gpt-4o": "2024-05", "gpt-4o-mini": "2024-07", "gpt-4.1": "2025-04", "gpt-4.1-mini": "2025-04",
    "gpt-4.1-nano": "2025-04", "o3-mini": "2025-01", "o3": "2025-04", "o4-mini": "2025-04",
    "gpt-5": "2025-08", "gpt-5-mini": "2025-08", "gpt-5-nano": "2025-08",
    "claude-instant-v1": "2023-03", "claude-3-5-haiku": "2024-10", "claude-3-7-sonnet": "2025-02",
    "claude-sonnet-4": "2025-05", "claude-opus-4": "2025-05", "claude-sonnet-4-5": "2025-09",
    "claude-haiku-4-5": "2025-10", "claude-opus-4-1": "2025-08",
    "mistral-large-2": "2024-07", "meta-llama-3-8b-instruct": "2024-04",
    "meta-llama-3.1-70b-instruct": "2024-07", "meta-llama-3.1-8b-instruct": "2024-07",
    "llama-3.1-8b": "2024-07", "llama-3.1-70b": "2024-07", "mixtral-8x7b-instruct-v0.1": "2023-12",
    "qwen2.5-72b-instruct": "2024-09", "qwen2.5-7b-instruct": "2024-09",
    "llama-2-70b-chat": "2023-07", "yi-34b-chat": "2023-11", "code-llama-instruct-34b-chat": "2023-08",
    "mixtral-8x7b-chat": "2023-12",
}

FEATURES = ("log10_input_per_m", "log10_output_per_m", "log2_context", "released", "openai",
            "anthropic")
PENALTIES = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
MIN_MODELS = 5


def released(name: str) -> float | None:
    """Release date as a fractional year: the snapshot suffix's, else `RELEASED`'s, else None."""
    base, date = split_snapshot(bare(name))
    month = date[:7] if date is not None else RELEASED.get(base)
    if month is None:
        return None
    year, mon = month.split("-")
    return int(year) + (int(mon) - 1) / 12


def family(name: str, provider: str = "") -> str:
    """`openai`, `anthropic` or `other`, by the bare name (or the provider when the name says none)."""
    b = bare(name)
    if b.startswith(("gpt-", "chatgpt-", "o1", "o3", "o4")) or provider == "openai":
        return "openai"
    if b.startswith("claude") or provider == "anthropic":
        return "anthropic"
    return "other"


def features(name: str, spec: ModelSpec) -> F64 | None:
    """Catalog features of a model (NaN where unknown), or None when it has no price."""
    if spec.input_per_m is None or spec.output_per_m is None:
        return None
    fam = family(name, spec.provider)
    when = released(name)
    return np.array([
        math.log10(max(float(spec.input_per_m), 1e-3)),
        math.log10(max(float(spec.output_per_m), 1e-3)),
        math.log2(spec.context_window) if spec.context_window else math.nan,
        math.nan if when is None else when,
        float(fam == "openai"), float(fam == "anthropic"),
    ], dtype=np.float64)


def known_features(model: RouterModel) -> dict[str, F64]:
    """Features of the artifact's models that have a catalog entry (`KNOWN_CATALOG_KEYS`)."""
    out: dict[str, F64] = {}
    for name in model.models:
        key = KNOWN_CATALOG_KEYS.get(name)
        spec = resolve_model(key, None) if key is not None else None
        x = features(name, spec) if spec is not None else None
        if x is not None:
            out[name] = x
    return out


def _loo_error(x: F64, y: F64, penalty: float) -> float:
    """Exact leave-one-out squared error of ridge on centred x, y (the hat matrix's diagonal)."""
    gram = x.T @ x + penalty * np.eye(x.shape[1])
    hat = x @ np.linalg.solve(gram, x.T)
    resid = (y - hat @ y) / (1.0 - np.diag(hat))[:, None]
    return float((resid ** 2).sum())


@dataclass(frozen=True)
class CatalogPrior:
    """Ridge map from standardised catalog features to [ability, bias] (see the module doc)."""

    names: tuple[str, ...]          # the known models it was fitted on
    center: F64
    scale: F64
    low: F64
    high: F64
    weights: F64                    # features × (latent_dim + 1)
    intercept: F64
    length: F64
    length_bias: float
    penalty: float

    @classmethod
    def fit(cls, model: RouterModel, exclude: Collection[str] = ()) -> CatalogPrior | None:
        """Fit on the artifact's catalogued models but `exclude`; None with fewer than 5 of them."""
        known = {n: x for n, x in known_features(model).items() if n not in exclude}
        if len(known) < MIN_MODELS:
            return None
        names = tuple(known)
        raw = np.vstack([known[n] for n in names])
        center = np.nanmean(raw, axis=0)
        raw = np.where(np.isnan(raw), center, raw)
        scale = raw.std(axis=0)
        scale[scale == 0] = 1.0
        x = (raw - center) / scale
        rows = [model.index(n) for n in names]
        theta = np.hstack([model.abilities[rows], model.biases[rows, None]]).astype(np.float64)
        intercept = theta.mean(axis=0)
        y = theta - intercept
        penalty = min(PENALTIES, key=lambda lam: _loo_error(x, y, lam))
        weights = np.linalg.solve(x.T @ x + penalty * np.eye(x.shape[1]), x.T @ y)
        return cls(names, center, scale, raw.min(axis=0), raw.max(axis=0), weights, intercept,
                   model.lengths[rows].astype(np.float64).mean(axis=0),
                   float(model.length_biases[rows].mean()), penalty)

    def theta(self, x: F64) -> F64:
        """[ability, bias] for raw features `x` (NaN -> the known mean, clamped to the known range)."""
        filled = np.clip(np.where(np.isnan(x), self.center, x), self.low, self.high)
        out: F64 = self.intercept + ((filled - self.center) / self.scale) @ self.weights
        return out

    def profile(self, name: str, spec: ModelSpec, tier: str = "") -> ModelProfile | None:
        """The profile of `name` from its catalog entry alone; None when the entry has no price."""
        x = features(name, spec)
        if x is None:
            return None
        theta = self.theta(x)
        return ModelProfile(name, to_f32(theta[:-1]), float(theta[-1]), to_f32(self.length),
                            self.length_bias, tier=tier)
