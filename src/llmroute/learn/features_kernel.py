"""The hashing featurizer's optional compiled kernel (`_kernel.c`, built by `hatch_build.py` at
install time): `HashingFeaturizer.transform` in one C call, bit for bit the pure path's features
(`transform_pure`: `features_short` for short texts, numpy for the rest), for texts of any length.

The kernel is optional: when its library is absent (no compiler at install time, or
`LLMROUTE_NO_KERNEL=1` then), `load` returns None and the pure path runs. `LLMROUTE_NO_KERNEL=1` at
run time also turns it off. `tests/learn/test_features_kernel.py` checks identity against the pure
path (features, P(good), decisions) on the ~1,800 texts of `test_features_short.py`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import numpy.typing as npt

from .features import DENSE_NAMES, NAMESPACES, FeatureRow
from .hashing import _TAIL_BLOCK_CHARS, FloatArray, clip_text, last_block
from .structure import _CODE_LINE_ENDS, _CODE_MARKERS, _MATH_MARKERS, _OPTION_MARKERS, Markers

#: The dense slots (`features.DENSE_NAMES` order) that are substring counts, and of which text.
_TEXT_COUNTS: tuple[tuple[str, int], ...] = (
    ("\n", 2), ("\n\n", 3), ("?", 11), *((m, 22) for m in _CODE_LINE_ENDS))
_LOWER_COUNTS: tuple[tuple[str, int], ...] = (
    *((m, 9) for m in _CODE_MARKERS), *((m, 10) for m in _MATH_MARKERS), *((m, 12) for m in _OPTION_MARKERS))
_M64 = (1 << 64) - 1
F64 = npt.NDArray[np.float64]

RowFn = Callable[[str, str, int, bool], "tuple[bytearray, bytearray, bytearray] | None"]


def _module() -> ModuleType | None:
    if os.environ.get("LLMROUTE_NO_KERNEL") == "1":
        return None
    try:
        return importlib.import_module("llmroute.learn._kernel")
    except ImportError:
        return None


def available() -> bool:
    """Whether the compiled kernel is built and switched on."""
    return _module() is not None


def max_keys(max_chars: int, char_sizes: tuple[int, ...]) -> int:
    """An upper bound on the hashes of one text: word uni/bigrams of the text and of its last block,
    and the block's character n-grams (the block is at most `_TAIL_BLOCK_CHARS` long)."""
    return 2 * max_chars + 2 * _TAIL_BLOCK_CHARS + len(char_sizes) * _TAIL_BLOCK_CHARS + 8


def log_tf_table(n: int) -> FloatArray:
    """float32(1 + log(count)) for count = 0..n-1: the numpy path's expression on the same counts."""
    counts = np.arange(n, dtype=np.int64)
    with np.errstate(divide="ignore"):
        table: FloatArray = (1.0 + np.log(counts)).astype(np.float32)
    return table


@dataclass(frozen=True)
class KernelRows:
    """A featurizer's compiled twin: `row(text)` is `transform_pure(text)`, or None for a text
    the kernel leaves to the pure path (lone surrogates, on which that path raises)."""

    max_chars: int
    kernel_row: RowFn
    #: `kernel_row(text, lower, len(tail), "?" in tail)` with lower() and `last_block` in C
    kernel_text_row: Callable[[str], tuple[bytearray, bytearray, bytearray] | None]

    def raw(self, text: str) -> tuple[bytearray, bytearray, bytearray] | None:
        """`row`'s three arrays as the kernel returns them (int64, float32, float32 bytes)."""
        if len(text) > self.max_chars:
            text = clip_text(text, self.max_chars)
        return self.kernel_text_row(text)

    def raw_in_python(self, text: str) -> tuple[bytearray, bytearray, bytearray] | None:
        """`raw` with the clipping, lower case and last block in Python (the tests' reference)."""
        text = clip_text(text, self.max_chars)
        lower = text.lower()[: self.max_chars]        # lower() may lengthen some Unicode text
        tail = last_block(lower)
        return self.kernel_row(text, lower, len(tail), "?" in tail)

    def row(self, text: str) -> FeatureRow | None:
        """The features of one text, or None (the pure path decides)."""
        out = self.raw(text)
        if out is None:
            return None
        idx, values, dense = out
        return FeatureRow(np.frombuffer(idx, dtype=np.int64), np.frombuffer(values, dtype=np.float32),
                          np.frombuffer(dense, dtype=np.float32))


@dataclass(frozen=True)
class KernelLatent:
    """A model's latent vectors by the kernel: the features and `values @ projection[indices] -
    latent_mean` in C, the sum in float64 then rounded to float32 (numpy's float32 BLAS product sums
    in another order: z may differ in its last bits; P(good) by at most ~1e-7 on the test corpus)."""

    rows: KernelRows
    project: Callable[[bytearray, bytearray, bytearray], bytearray]

    def latent_bytes(self, text: str) -> bytearray | None:
        """z of one text as float32 bytes, or None (lone surrogates: the pure path decides)."""
        out = self.rows.raw(text)
        return None if out is None else self.project(*out)

    def latent(self, text: str) -> FloatArray | None:
        """z of one text, or None (lone surrogates: the pure path decides)."""
        out = self.latent_bytes(text)
        if out is None:
            return None
        z: FloatArray = np.frombuffer(out, dtype=np.float32)
        return z


PoolFn = Callable[[bytearray, float], bytearray]


def pool(abilities: F64, biases: F64, lengths: F64, length_biases: F64, input_prices: F64,
         output_prices: F64) -> PoolFn | None:
    """`RouterModel.predict_latent` for one pool (abilities and lengths: models × latent) in C:
    `fn(z_bytes, chars)` -> P(good), cost and answer chars, 3 × models float64 bytes. The dot
    products sum in float64 in z's order and exp/tanh are libm's (numpy's BLAS and SIMD functions
    may differ in the last bits). None when the kernel is not built, or for an empty pool."""
    module = _module()
    if module is None or abilities.shape[0] == 0:
        return None
    f64 = [np.ascontiguousarray(a, dtype=np.float64) for a in (abilities, biases, lengths, length_biases,
                                                               input_prices, output_prices)]
    made = module.Pool(abilities.shape[0], abilities.shape[1], *f64)
    fn: PoolFn = made.predict
    return fn


def latent(rows: KernelRows | None, projection: npt.NDArray[np.float32] | npt.NDArray[np.float16],
           latent_mean: FloatArray) -> KernelLatent | None:
    """The kernel's latent vectors for a model with this projection; None when not built."""
    module = _module()
    if module is None or rows is None:
        return None
    kept = projection.dtype in (np.dtype(np.float32), np.dtype(np.float16))   # held, not copied
    projector = module.Projector(np.ascontiguousarray(projection, dtype=None if kept else np.float32),
                                 np.ascontiguousarray(latent_mean, dtype=np.float32))
    return KernelLatent(rows, projector.latent)


def load(bits: int, char_sizes: tuple[int, ...], max_chars: int, markers: Markers, idf: FloatArray | None,
         dense_mean: FloatArray | None, dense_std: FloatArray | None) -> KernelRows | None:
    """The kernel for a featurizer with these parameters and fitted arrays; None when not built."""
    module = _module()
    if module is None or (idf is not None and idf.shape != (1 << bits,)) or any(
            a is not None and a.shape != (len(DENSE_NAMES),) for a in (dense_mean, dense_std)):
        return None    # arrays that do not fit: the pure path (and the artifact's checks) report it
    f32 = [None if a is None else np.ascontiguousarray(a, dtype=np.float32)
           for a in (idf, dense_mean, dense_std)]
    kernel = module.Kernel(
        bits=bits, char_sizes=tuple(char_sizes),
        salts=tuple(salt * 0x632BE59BD9B4E019 & _M64 for salt, _ in NAMESPACES),
        marker_hashes=np.ascontiguousarray(markers.hashes, dtype=np.uint64),
        marker_features=np.ascontiguousarray(markers.feature, dtype=np.int64),
        log_tf=log_tf_table(max_keys(max_chars, char_sizes)),
        idf=f32[0], dense_mean=f32[1], dense_std=f32[2],
        lower_markers=_LOWER_COUNTS, text_markers=_TEXT_COUNTS, max_chars=max_chars,
        tail_chars=_TAIL_BLOCK_CHARS)
    return KernelRows(max_chars, kernel.row, kernel.text_row)
