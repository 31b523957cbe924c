"""The hashed n-gram featurizer's hashing: a polynomial rolling hash of code points (vectorised,
mod 2**64), word 1–2-gram and character n-gram hashes from prefix hashes, bucketing, and the
head/tail clipping of long prompts. Split out of `features` (issue 17 grew it); `features`
re-exports the public names."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]

_BASE = np.uint64(0x100000001B3)          # odd, so invertible mod 2**64
_MIX = np.uint64(0x9E3779B97F4A7C15)      # Fibonacci hashing multiplier
_HEAD_CHARS = 2_000                        # long prompts: keep the head and the tail
_TAIL_BLOCK_CHARS = 2_000


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
