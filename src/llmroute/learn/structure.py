"""The hashed n-gram featurizer's structural (dense) measurements: marker words and phrases, code
and math markers, numbers, list items and the rest of `features.DENSE_NAMES`. Split out of
`features` (issue 17 grew it)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from math import log1p
from types import MappingProxyType

import numpy as np

from .hashing import U64, FloatArray, IntArray, Powers, _codes, _word_edges, word_hashes

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
