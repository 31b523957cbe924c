"""Money and percentages for people: the report's and the dashboard's formats."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from ..ledger.entry import money_text

DASH = "—"


def fmt_usd(value: Decimal | None) -> str:
    """Dollars for people: `$4,500.00`; sub-cent amounts keep 6 decimals (then all of them, when
    under a millionth); rounding is half-even, whatever the ambient decimal context; None is `—`."""
    if value is None:
        return DASH
    sign, size = ("-" if value < 0 else ""), abs(value)
    if size == 0 or size >= Decimal("0.01"):
        return f"{sign}${size.quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN):,f}"
    if size >= Decimal("0.000001"):
        return f"{sign}${size.quantize(Decimal('0.000001'), rounding=ROUND_HALF_EVEN):f}"
    return f"{sign}${money_text(size)}"


def fmt_pct(value: Decimal | None) -> str:
    """`70%`, `66.67%` (trailing zeros dropped); None is `—`."""
    if value is None:
        return DASH
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}%"
