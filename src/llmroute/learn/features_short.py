"""The hashing featurizer's short-text path: the same features as `HashingFeaturizer.transform`, bit
for bit, with a fraction of its numpy calls (issue 17: on a prompt of a few dozen characters the
numpy path is ~150 calls on arrays of a few dozen elements, each paying numpy's per-call overhead).

- Word hashes in Python (the same polynomial hash mod 2**64, exact integers), each word's hash
  remembered in a bounded per-featurizer dict; the tail block's words reuse the text's when the tail
  is the whole text. The structural (dense) features in one pass of str methods, `bytes.translate`
  and three regular expressions: integer counts, so the same numbers.
- Character n-gram hashes and the weighting stay numpy (pure Python loses there: ~150 n-grams), with
  fewer calls: every span of one size from two slices of the prefix hashes and one scalar power; the
  three namespaces' salting, mixing and bucketing in one pass over one array. The float arithmetic is
  the numpy path's own operations on the same arrays, in the same dtypes and order (the tf weight
  read from a table of `float32(1 + np.log(count))`, the same values).

Texts over `SHORT_CHARS` keep the numpy path. `tests/learn/test_features_short.py` checks identity
(features, P(good), costs, decisions) against the numpy path on ~1,800 texts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from math import log1p

import numpy as np
import numpy.typing as npt

from .features import NAMESPACES, FeatureRow
from .hashing import U64, FloatArray, IntArray, Powers, _prefix, last_block
from .structure import (
    _CODE_LINE_ENDS,
    _CODE_MARKERS,
    _MATH_MARKERS,
    _OPTION_MARKERS,
    _SYMBOLS,
    MARKER_WORDS,
)

_M64 = (1 << 64) - 1
_BASE = 0x100000001B3
_MIX = 0x9E3779B97F4A7C15
_BIGRAM = 0x5BD1E995
#: Texts up to this many characters take this path (Python word hashing costs more on longer ones).
SHORT_CHARS = 400
#: How many words' hashes the short path remembers, and of which lengths (a bound on memory:
#: under ~250 bytes a word, ~12 MB at most per featurizer).
_KNOWN_WORDS = 50_000
_KNOWN_WORD_CHARS = 32
#: A word: a run of ASCII letters, digits and `_`, or of any code point above ASCII.
_WORD = re.compile("[0-9A-Za-z_\u0080-\U0010ffff]+")
#: A digit that starts a word (the text's quantities).
_NUMBER = re.compile("(?<![0-9A-Za-z_\u0080-\U0010ffff])[0-9]")
#: A line that starts `1.` / `2)` or with a bullet followed by a character.
_LIST_ITEM = re.compile("\n(?=[0-9][.)]|[-*\u2022][\\s\\S])")
_SURROGATE = re.compile("[\ud800-\udfff]")
_MIX64 = np.uint64(_MIX)
#: ASCII byte -> class: 0 other, 1 digit, 2 upper-case letter, 3 code/math symbol.
_CLASS_TABLE = bytes(1 if chr(i).isdigit() else 2 if chr(i).isupper() else 3 if chr(i) in _SYMBOLS else 0
                     for i in range(128)) + bytes(128)


def word_hash(word: str) -> int:
    """The polynomial hash of one (lower-cased) word, as `features.word_hashes` computes it."""
    h = 0
    for ch in word:
        h = (h * _BASE + ord(ch) + 1) & _M64
    return h


def word_hashes(text: str, known: dict[str, int] | None = None) -> list[int]:
    """Unigram then bigram hashes of the words of `text` (the order of `features.word_hashes`);
    `known` caches words' hashes (bounded: emptied when full; long words never kept)."""
    if known is None:
        uni = [word_hash(w) for w in _WORD.findall(text)]
    else:
        uni = []
        for w in _WORD.findall(text):
            h = known.get(w)
            if h is None:
                h = word_hash(w)
                if len(w) <= _KNOWN_WORD_CHARS:          # long junk words do not fill the cache
                    if len(known) >= _KNOWN_WORDS:
                        known.clear()
                    known[w] = h
            uni.append(h)
    bi = [(a * _MIX + b + _BIGRAM) & _M64 for a, b in pairwise(uni)]
    return uni + bi


def _salt(namespace: int) -> int:
    return NAMESPACES[namespace][0] * 0x632BE59BD9B4E019 & _M64


_SALT0, _SALT1, _SALT2 = _salt(0), _salt(1), np.uint64(_salt(2))


def _counted_lean(keys: npt.NDArray[np.int32]) -> tuple[npt.NDArray[np.int32], IntArray]:
    """`features._counted` (the distinct keys and their counts: the same integers) without the
    wrappers of `np.nonzero`, `np.append` and `np.diff`. Sorts `keys` in place."""
    keys.sort()
    changes = np.empty(len(keys), dtype=np.bool_)
    changes[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=changes[1:])
    starts = changes.nonzero()[0]
    counts = np.empty(len(starts), dtype=np.int64)
    np.subtract(starts[1:], starts[:-1], out=counts[:-1])
    counts[-1:] = len(keys) - starts[-1:]
    return keys[starts], counts


def char_hashes(codes: U64, powers: Powers, sizes: Sequence[int]) -> U64:
    """Hashes of every character n-gram of the given sizes, in `features.char_hashes`'s order: the
    same prefix hashes, every span of one size taken with one multiply by a scalar power."""
    h = _prefix(codes, powers)
    n = len(codes)
    out = [h[k:n + 1] - h[:n - k + 1] * powers.pw[k] + np.uint64(k) for k in sizes if n >= k]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.uint64)


@dataclass(frozen=True, eq=False)
class ShortTables:
    """What the short path reads, built once per featurizer."""

    bits: int
    char_sizes: tuple[int, ...]
    powers: Powers
    markers: Mapping[int, int]          # marker word/pair hash -> feature index
    known: dict[str, int]               # word -> hash, a bounded cache (a pure function's values)
    log_tf: FloatArray                  # float32(1 + log(count)), by count
    idf: FloatArray | None
    dense_mean: FloatArray | None
    dense_std: FloatArray | None

    @classmethod
    def make(cls, bits: int, char_sizes: tuple[int, ...], powers: Powers, idf: FloatArray | None,
             dense_mean: FloatArray | None, dense_std: FloatArray | None) -> ShortTables:
        """Tables for a featurizer with these parameters and fitted arrays."""
        markers = {word_hashes(w)[-1]: k for k, words in enumerate(MARKER_WORDS.values()) for w in words}
        counts = np.arange(3 * SHORT_CHARS + 8, dtype=np.int64)   # no bucket repeats more often
        with np.errstate(divide="ignore"):
            log_tf = (1.0 + np.log(counts)).astype(np.float32)
        return cls(bits, char_sizes, powers, markers, {}, log_tf, idf, dense_mean, dense_std)

    def row(self, text: str) -> FeatureRow | None:
        """`HashingFeaturizer.transform(text)` when `text` is short (and encodable: no lone
        surrogates, on which the numpy path raises); None when the numpy path should run."""
        if len(text) > SHORT_CHARS or not (text.isascii() or _SURROGATE.search(text) is None):
            return None
        lower = text.lower()
        tail = last_block(lower)
        tail_text = lower[len(lower) - len(tail):] if tail else ""
        words = word_hashes(lower, self.known)
        idx, values = self.weigh(self.keys(words, tail_text, lower))
        dense = np.asarray(structure(self.markers, text, lower, tail, words), dtype=np.float32)
        if self.dense_mean is not None and self.dense_std is not None:
            dense = (dense - self.dense_mean) / self.dense_std
        return FeatureRow(idx, values, dense)

    def keys(self, words: list[int], tail_text: str, lower: str) -> npt.NDArray[np.int32]:
        """Bucket + namespace × 2**bits of every hash (`features._bucket` and `weigh`'s keys)."""
        tail_words = words if tail_text == lower else word_hashes(tail_text, self.known)
        salted = np.array([h ^ _SALT0 for h in words] + [h ^ _SALT1 for h in tail_words], dtype=np.uint64)
        codes = np.frombuffer(tail_text.encode("utf-32-le"), dtype="<u4").astype(np.uint64)
        chars = char_hashes(codes, self.powers, self.char_sizes) ^ _SALT2
        mixed = np.concatenate((salted, chars)) * _MIX64
        keys = (mixed >> np.uint64(64 - self.bits)).astype(np.int32)
        size, n0 = 1 << self.bits, len(words)
        keys[n0:n0 + len(tail_words)] += size
        keys[n0 + len(tail_words):] += 2 * size
        return keys

    def weigh(self, keys: npt.NDArray[np.int32]) -> tuple[IntArray, FloatArray]:
        """`HashingFeaturizer.weigh`'s sparse block, the same numpy operations on the same arrays
        (the log of the counts read from a table of the same values)."""
        uniq, counts = _counted_lean(keys)
        size = 1 << self.bits
        idx, ns = (uniq % size).astype(np.int64), uniq // size
        w = self.log_tf[counts]
        if self.idf is not None:
            w *= self.idf[idx]
        norms = np.sqrt(np.bincount(ns, weights=w * w, minlength=len(NAMESPACES)))
        w /= np.maximum(norms, 1e-12).astype(np.float32)[ns]
        return idx, w


def _marker_counts(markers: Mapping[int, int], words: list[int]) -> list[int]:
    counts = [0] * len(MARKER_WORDS)
    for h in words:
        k = markers.get(h)
        if k is not None:
            counts[k] += 1
    return counts


def _words_after_first(text: str) -> int:
    """Word starts after the first character, plus one (the numpy path's `words_n`)."""
    return len(_WORD.findall(text)) - (1 if _WORD.match(text) else 0) + 1


def structure(markers: Mapping[int, int], text: str, lower: str, tail: str, words: list[int]
              ) -> list[float]:
    """`features.structure`'s values (float64, before the float32 cast) for a short text."""
    n = max(len(text), 1)
    ascii_bytes = text.encode("ascii", "ignore")
    classes = ascii_bytes.translate(_CLASS_TABLE)
    words_n = _words_after_first(text)
    constraints, steps, reasoning, recall, math_words, stopwords = _marker_counts(markers, words)
    items = len(_LIST_ITEM.findall(text)) if len(text) >= 3 else 0
    raw_tail = text[len(text) - len(tail):] if tail else ""
    return [
        log1p(len(text)), log1p(words_n), log1p(text.count("\n")),
        log1p(text.count("\n\n")), log1p(len(tail)), classes.count(1) / n,
        classes.count(2) / n, (len(text) - len(ascii_bytes)) / n, classes.count(3) / n,
        log1p(sum(map(lower.count, _CODE_MARKERS))), log1p(sum(map(lower.count, _MATH_MARKERS))),
        log1p(text.count("?")), log1p(sum(map(lower.count, _OPTION_MARKERS))), float("?" in tail),
        log1p(len(_NUMBER.findall(text))), log1p(len(_NUMBER.findall(raw_tail))),
        log1p(constraints), log1p(steps + items), log1p(items),
        log1p(reasoning), log1p(recall), log1p(math_words),
        log1p(sum(map(text.count, _CODE_LINE_ENDS))), stopwords / words_n,
        math.log(1.0 + len(text) / words_n),
    ]
