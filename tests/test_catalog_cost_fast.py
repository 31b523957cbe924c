"""`ModelSpec.cost` skips the cache terms of a usage without cache reads or writes only where the
Decimal it returns is the same, digits and exponent included (the ledger and the cost header print
it), as the term-by-term sum's."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from llmroute.catalog import ModelSpec
from llmroute.types import Usage

_PRICES = st.builds(lambda digits, exponent: Decimal(digits).scaleb(exponent),
                    st.integers(0, 10**6), st.integers(-12, 3))
_OPTIONAL = st.none() | _PRICES


@given(_PRICES, _PRICES, _OPTIONAL, _OPTIONAL, _OPTIONAL, st.integers(0, 10**9),
       st.integers(0, 10**7))
def test_the_plain_sum_is_the_full_sum_digit_for_digit(
        input_per_m: Decimal, output_per_m: Decimal, cached: Decimal | None,
        write: Decimal | None, write_1h: Decimal | None, tokens_in: int, tokens_out: int) -> None:
    spec = ModelSpec("m", "p", input_per_m, output_per_m, cached_input_per_m=cached,
                     cache_write_per_m=write, cache_write_1h_per_m=write_1h)
    usage = Usage(tokens_in, tokens_out)
    cost = spec.cost(usage)
    assert cost is not None
    full = spec._full_cost(usage)
    assert cost == full and cost.as_tuple() == full.as_tuple()


def test_a_cache_price_with_more_decimals_takes_the_full_sum() -> None:
    spec = ModelSpec("m", "p", Decimal("3"), Decimal("15"), cached_input_per_m=Decimal("0.30"))
    assert not spec._plain_sum
    assert str(spec.cost(Usage(1000, 100))) == str(spec._full_cost(Usage(1000, 100)))
    assert ModelSpec("m", "p", Decimal("0.15"), Decimal("0.6"))._plain_sum
