"""Turn a prompt into numbers: the featurizer interface and the default hashed n-gram featurizer.

A featurizer maps text to a `FeatureRow`: a sparse block (bucket ids and weights, projected by the
model onto its latent skills) and a small dense block (structural measurements, passed straight
through). The default `HashingFeaturizer` is pure numpy and deterministic across runs and machines:
word 1–2-grams of the whole text and of its last block (usually the actual question), character
3–5-grams of the last block, each hashed with a polynomial rolling hash (vectorised, mod 2**64),
weighted by sublinear tf × idf and L2-normalised per namespace. The optional sentence-embedding
featurizer (`embed.EmbeddingFeaturizer`, the `embed` extra) implements the same protocol by returning
its vector as the sparse block's last columns.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from math import log1p
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from .features_kernel import KernelRows
    from .features_short import ShortTables

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]

HASHING_NAME = "hashing-ngrams"
HASHING_VERSION = 2
_BASE = np.uint64(0x100000001B3)          # odd, so invertible mod 2**64
_MIX = np.uint64(0x9E3779B97F4A7C15)      # Fibonacci hashing multiplier
_HEAD_CHARS = 2_000                        # long prompts: keep the head and the tail
_TAIL_BLOCK_CHARS = 2_000
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
#: Marker words and word pairs, per dense feature (matched as whole words of the lower-cased text).
MARKER_WORDS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "log_constraints": ("must", "should", "exactly", "at least", "at most", "no more", "no less",
                        "without", "only", "do not", "don't", "never", "ensure", "make sure", "each",
                        "every", "less than", "more than", "limit", "format", "words", "sentences"),
    "log_steps": ("step", "steps", "first", "then", "next", "finally", "afterwards", "stage", "phase"),
    "log_reasoning_asks": ("why", "explain", "prove", "show that", "derive", "solve", "calculate",
                           "compute", "how many", "how much", "determine", "evaluate", "justify",
                           "reasoning", "simplify", "estimate", "compare", "analyze", "analyse"),
    "log_recall_asks": ("what is", "who", "when", "where", "which", "name", "define", "capital",
                        "what year", "who was", "true or false", "fact"),
    "log_math_words": ("equation", "integer", "integers", "probability", "sum", "product", "polynomial",
                       "prime", "triangle", "area", "angle", "remainder", "digits", "real", "fraction",
                       "percent", "ratio", "divisible", "maximum", "minimum", "value", "total", "cost",
                       "price", "average"),
    "stopword_frac": ("the", "of", "and", "to", "is", "in", "that", "it", "for", "are", "was", "with"),
})


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
def _codes(text: str) -> U64:
    return np.frombuffer(text.encode("utf-32-le"), dtype="<u4").astype(np.uint64)


def _inverse_mod_2_64(a: int) -> int:
    x = a  # Newton iteration: each step doubles the number of correct low bits
    for _ in range(6):
        x = (x * (2 - a * x)) % (1 << 64)
    return x


@dataclass(frozen=True)
class Powers:
    """P**i and P**-i mod 2**64 for i = 0..n (computed once per featurizer, read-only)."""

    pw: U64
    inv: U64

    @classmethod
    def make(cls, n: int) -> Powers:
        """Tables for texts of up to `n` code points."""
        pw = np.ones(n + 1, dtype=np.uint64)
        inv = np.ones(n + 1, dtype=np.uint64)
        pw[1:] = np.cumprod(np.full(n, _BASE, dtype=np.uint64), dtype=np.uint64)
        base_inv = np.uint64(_inverse_mod_2_64(int(_BASE)))
        inv[1:] = np.cumprod(np.full(n, base_inv, dtype=np.uint64), dtype=np.uint64)
        pw.setflags(write=False)
        inv.setflags(write=False)
        return cls(pw, inv)


def _prefix(codes: U64, powers: Powers) -> U64:
    """Prefix hashes H (H[i] = hash of codes[:i]), mod 2**64, vectorised:
    H[i] = sum_{j<i} c_j P^(i-1-j) = P^(i-1) * sum_{j<i} c_j P^-j."""
    n = len(codes)
    h = np.zeros(n + 1, dtype=np.uint64)
    if n:
        acc = np.cumsum((codes + np.uint64(1)) * powers.inv[:n], dtype=np.uint64)
        h[1:] = acc * powers.pw[:n]
    return h


def _spans(h: U64, pw: U64, starts: IntArray, ends: IntArray) -> U64:
    """Hashes of codes[starts:ends] from prefix hashes (vectorised)."""
    out: U64 = h[ends] - h[starts] * pw[ends - starts]
    return out


def _bucket(hashes: U64, salt: int, bits: int) -> IntArray:
    mixed = (hashes ^ np.uint64(salt * 0x632BE59BD9B4E019 & 0xFFFFFFFFFFFFFFFF)) * _MIX
    return (mixed >> np.uint64(64 - bits)).astype(np.int64)


#: Word characters by code point: ASCII letters, digits and `_`; index 128 stands for every code
#: point above ASCII (all count as word characters).
_WORD_CHAR = np.asarray([chr(i).isascii() and (chr(i).isalnum() or chr(i) == "_") for i in range(128)]
                        + [True], dtype=np.int8)
_LAST_ASCII = np.uint64(128)


def _word_edges(codes: U64) -> IntArray:
    """+1 where a word starts and −1 just past where one ends, over len(codes) + 1 positions
    (one table lookup and one subtraction: the hot path's cheapest form)."""
    padded = np.zeros(len(codes) + 2, dtype=np.int8)
    padded[1:-1] = _WORD_CHAR[np.minimum(codes, _LAST_ASCII).astype(np.intp)]
    edges: IntArray = padded[1:] - padded[:-1]
    return edges


def word_hashes(codes: U64, powers: Powers) -> U64:
    """Hashes of the word unigrams and bigrams of (lower-cased) code points."""
    if len(codes) == 0:
        return np.zeros(0, dtype=np.uint64)
    edges = _word_edges(codes)
    starts = np.nonzero(edges == 1)[0]
    ends = np.nonzero(edges == -1)[0]
    uni = _spans(_prefix(codes, powers), powers.pw, starts, ends)
    bi = uni[:-1] * _MIX + uni[1:] + np.uint64(0x5BD1E995)
    return np.concatenate((uni, bi))


def char_hashes(codes: U64, sizes: Sequence[int], powers: Powers) -> U64:
    """Hashes of every character n-gram of the given sizes (whitespace runs kept as-is)."""
    h = _prefix(codes, powers)
    pw = powers.pw
    n = len(codes)
    out = [np.zeros(0, dtype=np.uint64)]
    for k in sizes:
        if n >= k:
            starts = np.arange(n - k + 1, dtype=np.int64)
            out.append(_spans(h, pw, starts, starts + k) + np.uint64(k))
    return np.concatenate(out)


def last_block(text: str) -> str:
    """The text after the last blank line (the question of a few-shot prompt), capped in length."""
    body = text.rstrip()
    cut = body.rfind("\n\n")
    tail = body[cut + 2:] if cut >= 0 else body
    return tail[-_TAIL_BLOCK_CHARS:]


def clip_text(text: str, max_chars: int) -> str:
    """Keep long texts' head and tail (the instructions and the question) within `max_chars`."""
    if len(text) <= max_chars:
        return text
    head = min(_HEAD_CHARS, max_chars // 4)
    return text[:head] + "\n" + text[len(text) - (max_chars - head - 1):]


# --------------------------------------------------------------------------------------- structure
_CODE_MARKERS = ("```", "def ", "return", "import ", "{", "};", "();", "=>", "print(", "[python]")
_MATH_MARKERS = ("$", "\\frac", "\\", "^", "=", "sqrt", "\\(")
_OPTION_MARKERS = ("\na)", "\nb)", "\nc)", "\nd)", "\n(a)", "\n(b)", "\na.", "\nb.")
_SYMBOLS = "{}()[]=;<>*/+"
#: ASCII code point -> class: 0 other, 1 digit, 2 upper-case letter, 3 code/math symbol.
_ASCII_CLASS = bytes(1 if chr(i).isdigit() else 2 if chr(i).isupper() else 3 if chr(i) in _SYMBOLS else 0
                     for i in range(128))


def _count(text: str, markers: Sequence[str], present: frozenset[str]) -> int:
    """Occurrences of every marker (`str.count` each); `present` is `_rare_chars(text)`: a marker
    with a rare character the text lacks counts 0 without a scan (the same number)."""
    return sum([text.count(m) for m in markers if _GATES[m] <= present])


def _rare_chars(text: str) -> frozenset[str]:
    """Which of `_RARE_CHARS` occur in `text` (one memchr each: cheap next to `str.count`)."""
    return frozenset([c for c in _RARE_CHARS if c in text])


@dataclass(frozen=True)
class Markers:
    """The hashes of every `MARKER_WORDS` entry (one word: its unigram hash; two: their bigram's),
    sorted, with the index of the feature each belongs to (a word belongs to one feature only)."""

    hashes: U64
    feature: IntArray

    @classmethod
    def make(cls, powers: Powers) -> Markers:
        """The table, features in `MARKER_WORDS` order."""
        pairs = sorted((int(word_hashes(_codes(w), powers)[-1]), k)   # a word's unigram, a pair's bigram
                       for k, words in enumerate(MARKER_WORDS.values()) for w in words)
        if len({h for h, _ in pairs}) != len(pairs):
            raise ValueError("a marker word is listed twice in MARKER_WORDS")
        return cls(np.asarray([h for h, _ in pairs], dtype=np.uint64),
                   np.asarray([k for _, k in pairs], dtype=np.int64))

    def counts(self, word_hashes_of_text: U64) -> list[int]:
        """How many words / word pairs of the text are markers of each feature (one binary search)."""
        at = np.minimum(np.searchsorted(self.hashes, word_hashes_of_text), len(self.hashes) - 1)
        hit = self.hashes[at] == word_hashes_of_text
        counts = np.bincount(self.feature[at[hit]], minlength=len(MARKER_WORDS))
        return [int(c) for c in counts]


_DIGIT_LOW, _DIGIT_HIGH = np.uint64(48), np.uint64(57)
_NEWLINE = np.uint64(10)
_DOT, _PAREN = np.uint64(ord(".")), np.uint64(ord(")"))
_DASH, _STAR, _BULLET = np.uint64(ord("-")), np.uint64(ord("*")), np.uint64(0x2022)
_CODE_LINE_ENDS = (":\n", "{\n", ";\n", "}\n", "\n    ", "\n\t")
#: Characters rarer in prose than letters: a marker containing one cannot occur in a text without
#: it, and `char in text` (memchr) is far cheaper than `str.count` on a long text.
_RARE_CHARS = "`[]$\\^{}>;=(\t):\n"
#: marker -> its characters among `_RARE_CHARS` (a text lacking one cannot contain the marker).
_GATES: Mapping[str, frozenset[str]] = MappingProxyType({
    m: frozenset(c for c in _RARE_CHARS if c in m)
    for m in _CODE_MARKERS + _MATH_MARKERS + _OPTION_MARKERS + _CODE_LINE_ENDS})


def _numbers(codes: U64, edges: IntArray) -> int:
    """Words (runs of word characters) that start with a digit: the quantities in the text."""
    starts = np.nonzero(edges[:-1] == 1)[0]
    first = codes[starts]
    return int(np.count_nonzero((first >= _DIGIT_LOW) & (first <= _DIGIT_HIGH)))


def _list_items(codes: U64) -> int:
    """Lines that start with `1.` / `2)` ... or a bullet (`-`, `*`, `•`)."""
    if len(codes) < 3:
        return 0
    at = np.nonzero(codes[:-2] == _NEWLINE)[0] + 1
    if len(at) == 0:
        return 0
    nxt, after = codes[at], codes[at + 1]
    numbered = (nxt >= _DIGIT_LOW) & (nxt <= _DIGIT_HIGH) & ((after == _DOT) | (after == _PAREN))
    bullet = (nxt == _DASH) | (nxt == _STAR) | (nxt == _BULLET)
    return int(np.count_nonzero(numbered | bullet))


def structure(text: str, lower: str, tail: str, codes: U64, words: U64, tail_codes: U64,
              markers: Markers) -> FloatArray:
    """Cheap structural measurements of a text (see `DENSE_NAMES`), roughly unit-scaled.
    `codes` are the code points of `text` (not lower-cased), `words` the word uni/bigram hashes of
    the lower-cased text, `tail_codes` the code points of its last block."""
    n = max(len(codes), 1)
    ascii_codes = codes[codes < 128].astype(np.intp)
    classes = np.bincount(np.frombuffer(_ASCII_CLASS, dtype=np.uint8)[ascii_codes], minlength=4)
    edges = _word_edges(codes)                               # word starts after the first character
    words_n = int(np.count_nonzero(edges[1:-1] == 1)) + 1
    constraints, steps, reasoning, recall, math_words, stopwords = markers.counts(words)
    items = _list_items(codes)
    rare = _rare_chars(lower)
    values = (
        log1p(len(text)), log1p(words_n), log1p(text.count("\n")),
        log1p(text.count("\n\n")), log1p(len(tail)), classes[1] / n,
        classes[2] / n, (len(codes) - len(ascii_codes)) / n, classes[3] / n,
        log1p(_count(lower, _CODE_MARKERS, rare)), log1p(_count(lower, _MATH_MARKERS, rare)),
        log1p(text.count("?")), log1p(_count(lower, _OPTION_MARKERS, rare)), float("?" in tail),
        log1p(_numbers(codes, edges)), log1p(_numbers(tail_codes, _word_edges(tail_codes))),
        log1p(constraints), log1p(steps + items), log1p(items),
        log1p(reasoning), log1p(recall), log1p(math_words),
        log1p(_count(text, _CODE_LINE_ENDS, _rare_chars(text))), stopwords / words_n,
        math.log(1.0 + len(text) / words_n),
    )
    return np.asarray(values, dtype=np.float32)


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
