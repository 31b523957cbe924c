"""Turn a prompt into numbers: the featurizer interface and the default hashed n-gram featurizer.

A featurizer maps text to a `FeatureRow`: a sparse block (bucket ids and weights, projected by the
model onto its latent skills) and a small dense block (structural measurements, passed straight
through). The default `HashingFeaturizer` is pure numpy and deterministic across runs and machines:
word 1–2-grams of the whole text and of its last block (usually the actual question), character
3–5-grams of the last block, each hashed with a polynomial rolling hash (vectorised, mod 2**64),
weighted by sublinear tf × idf and L2-normalised per namespace. The optional sentence-embedding
featurizer (`embed.EmbeddingFeaturizer`, the `embed` extra) implements the same protocol by returning
its vector as the sparse block's last columns. The hashing lives in `hashing`, the structural
(dense) measurements in `structure`; the public names are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from .hashing import (
    FloatArray,
    IntArray,
    Powers,
    _bucket,
    _codes,
    char_hashes,
    clip_text,
    last_block,
    word_hashes,
)
from .structure import MARKER_WORDS, Markers, structure

__all__ = [
    "DENSE_NAMES", "DENSE_NAMES_V2", "HASHING_NAME", "HASHING_VERSION", "MARKER_WORDS", "NAMESPACES",
    "FeatureRow", "Featurizer", "FloatArray", "HashingFeaturizer", "IntArray", "Powers", "clip_text",
    "featurizer_from", "last_block", "word_hashes",
]

if TYPE_CHECKING:
    from .features_kernel import KernelRows
    from .features_short import ShortTables


HASHING_NAME = "hashing-ngrams"
HASHING_VERSION = 2
#: (namespace salt, what) — the sparse namespaces, in order.
NAMESPACES: tuple[tuple[int, str], ...] = ((1, "text words"), (2, "tail words"), (3, "tail chars"))
DENSE_NAMES: tuple[str, ...] = (
    "log_chars", "log_words", "log_lines", "log_blocks", "log_tail_chars", "digit_frac",
    "ascii_upper_frac", "nonascii_frac", "symbol_frac", "code_markers", "math_markers", "questions",
    "options", "tail_question",
    # version 2: what makes a prompt hard in any domain (issue 13), from the word hashes and code points
    "log_numbers", "log_tail_numbers", "log_constraints", "log_steps", "log_list_items",
    "log_reasoning_asks", "log_recall_asks", "log_math_words", "log_code_lines", "stopword_frac",
    "log_word_chars",
)
#: The version-2 structural features (issue 13), e.g. for a separate L2 (`TrainConfig.dense_l2_by_name`).
DENSE_NAMES_V2: tuple[str, ...] = DENSE_NAMES[DENSE_NAMES.index("log_numbers"):]


@dataclass(frozen=True)
class FeatureRow:
    """One text's features: sparse (`indices` into `sparse_dim`, `values`) plus a dense block."""

    indices: IntArray
    values: FloatArray
    dense: FloatArray


class Featurizer(Protocol):
    """What the model needs from any featurizer (hashed n-grams; sentence embeddings in `embed`).
    A featurizer may also offer `transform_many(texts) -> list[FeatureRow]` (batched; used when present)."""

    @property
    def name(self) -> str:
        """Stable identifier stored in artifacts; loading checks it."""
        ...

    @property
    def sparse_dim(self) -> int:
        """Number of sparse columns (hash buckets, or embedding size)."""
        ...

    @property
    def dense_dim(self) -> int:
        """Number of dense structural columns."""
        ...

    def config(self) -> dict[str, Any]:
        """JSON-ready parameters; two featurizers with equal name and config featurize identically."""
        ...

    def state(self) -> dict[str, npt.NDArray[Any]]:
        """Fitted arrays (e.g. idf) to store in an artifact."""
        ...

    def transform(self, text: str) -> FeatureRow:
        """Features of one text (the serving path)."""
        ...

    def fit(self, texts: Sequence[str]) -> Featurizer:
        """A copy with its fitted state learned from training texts."""
        ...


# ---------------------------------------------------------------------------------------------- hashing

def _counted(keys: npt.NDArray[np.int32]) -> tuple[npt.NDArray[np.int32], IntArray]:
    """`np.unique(keys, return_counts=True)` for a 1-D integer array, without its wrapper's
    dispatch (a sort, a mask of where values change, their positions' differences): the same
    arrays. Sorts `keys` in place."""
    keys.sort()
    changes = np.empty(len(keys), dtype=np.bool_)
    changes[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=changes[1:])
    starts = np.nonzero(changes)[0]
    counts: IntArray = np.diff(np.append(starts, len(keys)))
    return keys[starts], counts


# ----------------------------------------------------------------------------------- the featurizer
@dataclass(frozen=True)
class HashingFeaturizer:
    """Hashed word/char n-grams (tf-idf, per-namespace L2) + structural features. Pure numpy.

    `fit` learns idf and the dense block's mean/std from training texts and returns a new instance;
    an unfitted one uses idf = 1 and no standardisation.
    """

    bits: int = 16
    char_sizes: tuple[int, ...] = (3, 4, 5)
    max_chars: int = 12_000
    idf: FloatArray | None = None
    dense_mean: FloatArray | None = None
    dense_std: FloatArray | None = None
    _powers: Powers = field(init=False, repr=False, compare=False)
    _markers: Markers = field(init=False, repr=False, compare=False)
    _short: ShortTables = field(init=False, repr=False, compare=False)
    _kernel: KernelRows | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        from . import features_kernel  # both build on this module's definitions
        from .features_short import ShortTables

        object.__setattr__(self, "_powers", Powers.make(self.max_chars + 1))
        object.__setattr__(self, "_markers", Markers.make(self._powers))
        short = ShortTables.make(self.bits, self.char_sizes, self._powers, self.idf, self.dense_mean,
                                 self.dense_std)
        object.__setattr__(self, "_short", short)
        kernel = features_kernel.load(self.bits, self.char_sizes, self.max_chars, self._markers, self.idf,
                                      self.dense_mean, self.dense_std)
        object.__setattr__(self, "_kernel", kernel)

    @property
    def name(self) -> str:
        """Identifier checked when an artifact is loaded."""
        return HASHING_NAME

    @property
    def kernel(self) -> KernelRows | None:
        """The compiled kernel (`features_kernel`), None when it is not built or switched off."""
        return self._kernel

    @property
    def sparse_dim(self) -> int:
        """Number of hash buckets."""
        return 1 << self.bits

    @property
    def dense_dim(self) -> int:
        """Number of structural features."""
        return len(DENSE_NAMES)

    def config(self) -> dict[str, Any]:
        """Everything that changes the features, JSON-ready."""
        return {"version": HASHING_VERSION, "bits": self.bits, "char_sizes": list(self.char_sizes),
                "max_chars": self.max_chars, "namespaces": [n for _, n in NAMESPACES],
                "dense": list(DENSE_NAMES),
                "markers": {k: list(v) for k, v in MARKER_WORDS.items()}}

    def state(self) -> dict[str, npt.NDArray[Any]]:
        """The fitted arrays (empty when unfitted)."""
        if self.idf is None or self.dense_mean is None or self.dense_std is None:
            return {}
        return {"idf": self.idf, "dense_mean": self.dense_mean, "dense_std": self.dense_std}

    def raw(self, text: str) -> tuple[list[IntArray], FloatArray]:
        """Bucket ids per namespace (with repeats) and the unstandardised dense block."""
        text = clip_text(text, self.max_chars)
        lower = text.lower()[: self.max_chars]        # lower() may lengthen some Unicode text
        tail = last_block(lower)
        codes = _codes(lower)
        tail_codes = codes[len(codes) - len(tail):] if tail else codes[:0]
        hashed = (word_hashes(codes, self._powers), word_hashes(tail_codes, self._powers),
                  char_hashes(tail_codes, self.char_sizes, self._powers))
        buckets = [_bucket(h, salt, self.bits) for h, (salt, _) in zip(hashed, NAMESPACES, strict=True)]
        raw_codes = _codes(text)
        return buckets, structure(text, lower, tail, raw_codes, hashed[0],
                                  raw_codes[len(raw_codes) - len(tail):] if tail else raw_codes[:0],
                                  self._markers)

    def weigh(self, buckets: Sequence[IntArray], dense: FloatArray) -> FeatureRow:
        """Sublinear tf × idf, L2 per namespace; standardise the dense block."""
        size = self.sparse_dim
        keys = np.concatenate([(ids + ns * size).astype(np.int32) for ns, ids in enumerate(buckets)])
        uniq, counts = _counted(keys)                           # int32 sorts faster than int64
        idx, ns = (uniq % size).astype(np.int64), uniq // size
        w = (1.0 + np.log(counts)).astype(np.float32)
        if self.idf is not None:
            w *= self.idf[idx]
        norms = np.sqrt(np.bincount(ns, weights=w * w, minlength=len(buckets)))
        w /= np.maximum(norms, 1e-12).astype(np.float32)[ns]
        if self.dense_mean is not None and self.dense_std is not None:
            dense = (dense - self.dense_mean) / self.dense_std
        return FeatureRow(idx, w, dense.astype(np.float32))

    def transform(self, text: str) -> FeatureRow:
        """Features of one text: by the compiled kernel when it is built (`features_kernel`),
        else `transform_pure` (the same features bit for bit)."""
        kernel = self._kernel
        if kernel is not None:
            row = kernel.row(text)
            if row is not None:
                return row
        return self.transform_pure(text)

    def transform_pure(self, text: str) -> FeatureRow:
        """Features of one text without the kernel: short texts by the pure-Python path
        (`features_short`, the same features bit for bit), longer ones by numpy."""
        short = self._short.row(text)
        if short is not None:
            return short
        return self.transform_numpy(text)

    def transform_numpy(self, text: str) -> FeatureRow:
        """Features of one text by the numpy path (any length)."""
        buckets, dense = self.raw(text)
        return self.weigh(buckets, dense)

    def fit(self, texts: Sequence[str]) -> HashingFeaturizer:
        """A copy with idf (smoothed, from document frequency) and dense mean/std from `texts`."""
        df = np.zeros(self.sparse_dim, dtype=np.float64)
        dense = np.zeros((len(texts), self.dense_dim), dtype=np.float64)
        for i, text in enumerate(texts):
            buckets, dense[i] = self.raw(text)
            df[np.unique(np.concatenate(buckets))] += 1
        idf = (np.log((1 + len(texts)) / (1 + df)) + 1).astype(np.float32)
        std = dense.std(axis=0)
        std[std < 1e-6] = 1.0
        return HashingFeaturizer(self.bits, self.char_sizes, self.max_chars, idf,
                                 dense.mean(axis=0).astype(np.float32), std.astype(np.float32))


    @classmethod
    def from_artifact(cls, config: Mapping[str, Any], state: Mapping[str, npt.NDArray[Any]]
                      ) -> HashingFeaturizer:
        """Rebuild from `config()` and `state()` (`ValueError` when this code featurizes differently)."""
        if config.get("version") != HASHING_VERSION:
            raise ValueError(f"featurizer {HASHING_NAME!r} version {config.get('version')!r}, "
                             f"this code has version {HASHING_VERSION}; rebuild the artifact")
        made = cls(int(config["bits"]), tuple(int(k) for k in config["char_sizes"]), int(config["max_chars"]))
        ours = made.config()
        if ours != dict(config):
            diff = {k: (config.get(k), ours.get(k)) for k in sorted(set(ours) | set(config))
                    if config.get(k) != ours.get(k)}
            raise ValueError(f"featurizer config mismatch (key: artifact value, this code's value): "
                             f"{diff}; rebuild the artifact (make router-artifact)")
        if not state:
            return made
        f32 = {k: np.asarray(state[k], dtype=np.float32) for k in ("idf", "dense_mean", "dense_std")}
        return cls(made.bits, made.char_sizes, made.max_chars, f32["idf"], f32["dense_mean"],
                   f32["dense_std"])


def _embeddings_from_artifact(config: Mapping[str, Any], state: Mapping[str, npt.NDArray[Any]]) -> Featurizer:
    """The optional sentence-embedding featurizer (`embed` extra), imported only when an artifact
    names it; its heavy packages are imported only by the encoder it needs."""
    from .embed import from_artifact

    return from_artifact(config, state)


#: Featurizers an artifact may name, by name -> rebuild(config, state).
FEATURIZERS: Mapping[str, Callable[[Mapping[str, Any], Mapping[str, npt.NDArray[Any]]], Featurizer]] = (
    MappingProxyType({HASHING_NAME: HashingFeaturizer.from_artifact,
                      "sentence-embeddings": _embeddings_from_artifact}))


def featurizer_from(name: str, config: Mapping[str, Any],
                    state: Mapping[str, npt.NDArray[Any]]) -> Featurizer:
    """Rebuild a featurizer from an artifact's name, config and arrays (`ValueError` if unknown)."""
    rebuild = FEATURIZERS.get(name)
    if rebuild is None:
        raise ValueError(f"unknown featurizer {name!r} (this build knows {', '.join(FEATURIZERS)})")
    return rebuild(config, state)
