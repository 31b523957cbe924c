"""Exact, cheaper twins of the two number formats in every decision's reason: `two_places(x)` is
`f"{x:.2f}"` and `round4(x)` is `round(x, 4)`, for the same float in, the same text or float out
(and `three_places(x)`, `f"{x:.3f}"`, for the answer's confidence header).

Both of CPython's forms convert through a correctly rounded decimal string (`dtoa`), a few
thousand instructions each; a decision formats a dozen of them. For a probability (0 < x ≤ 1) the
nearest integer to x·10ⁿ is read from the float product instead: that product is within 2⁻⁵³·10ⁿ
of the exact one, so unless it lies within `_NEAR_HALF` of a half (where a tie or the product's
rounding could decide), its nearest integer is the exact one's, which is what the correctly
rounded conversion rounds to. `k / 10⁴` is then the float nearest the decimal k·10⁻⁴ (IEEE
division is correctly rounded), as `round` returns. Anything else (zero, ±0.0's sign, negatives,
above 1, NaN, ±inf, the near-halves) goes to CPython's own formatting.
"""

from __future__ import annotations

import math

#: The 101 two-place texts of 0.00 .. 1.00, by hundredths.
_HUNDREDTHS: tuple[str, ...] = (*(f"0.{i:02d}" for i in range(100)), "1.00")
#: The 1,001 three-place texts of 0.000 .. 1.000, by thousandths.
_THOUSANDTHS: tuple[str, ...] = (*(f"0.{i:03d}" for i in range(1000)), "1.000")
#: Far wider than the float product's error (≤ 2⁻⁵³·10⁴ ≈ 1.1e-12), far narrower than a step.
_NEAR_HALF = 1e-9
_LOW, _HIGH = 0.5 - _NEAR_HALF, 0.5 + _NEAR_HALF


def two_places(x: float) -> str:
    """`f"{x:.2f}"`, exactly."""
    if 0.0 < x <= 1.0:
        y = x * 100.0
        whole = math.floor(y)
        part = y - whole                       # exact: a float's fractional part is a float
        if part < _LOW:
            return _HUNDREDTHS[whole]
        if part > _HIGH:
            return _HUNDREDTHS[whole + 1]
    return f"{x:.2f}"


def three_places(x: float) -> str:
    """`f"{x:.3f}"`, exactly (the same argument as `two_places`: the product's error is at most
    2⁻⁵³·10³). A decision's confidence in the answer's `x-llmroute-confidence` header."""
    if 0.0 < x <= 1.0:
        y = x * 1000.0
        whole = math.floor(y)
        part = y - whole
        if part < _LOW:
            return _THOUSANDTHS[whole]
        if part > _HIGH:
            return _THOUSANDTHS[whole + 1]
    return f"{x:.3f}"


def round4(x: float) -> float:
    """`round(x, 4)`, exactly (the same float)."""
    if 0.0 < x <= 1.0:
        y = x * 10000.0
        whole = math.floor(y)
        part = y - whole
        if part < _LOW:
            return whole / 10000.0
        if part > _HIGH:
            return (whole + 1) / 10000.0
    return round(x, 4)


def scores_and_ranked(names: list[str], values: list[float]) -> tuple[dict[str, float], str]:
    """`{n: round(q, 4)}` over `names` and `values`, and `", ".join(f"{n} {s:.2f}")` over that
    dict's items, exactly: `round4` and `two_places` inlined in one pass. The two-place text comes
    from the four-place integer k (`two_places(k / 10⁴)`): k/10⁴ lies within a float's rounding of
    the decimal, so unless k ends in 50 (a half: the float decides) it rounds as k/100 does."""
    scores: dict[str, float] = {}
    parts: list[str] = []
    floor = math.floor
    for name, q in zip(names, values, strict=True):
        k = -1
        if 0.0 < q <= 1.0:
            y = q * 10000.0
            whole = floor(y)
            part = y - whole
            if part < _LOW:
                k = whole
            elif part > _HIGH:
                k = whole + 1
        if k < 0:
            score = round(q, 4)
            text = f"{score:.2f}"
        else:
            score = k / 10000.0
            rest = k % 100
            text = _HUNDREDTHS[k // 100 + (rest > 50)] if rest != 50 else f"{score:.2f}"
        scores[name] = score
        parts.append(f"{name} {text}")
    if len(parts) != len(scores):              # a repeated name: the dict keeps its last score
        return scores, ", ".join([f"{n} {two_places(s)}" for n, s in scores.items()])
    return scores, ", ".join(parts)
