"""Issue 17, cut17: the hot route's response head built as bytes (`outcome_head`) equals what it
replaces, `encode_headers(outcome.headers())`: names, values and order, for any outcome."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from llmroute.outcome import Outcome, Plan
from llmroute.resilience import Attempt
from llmroute.server.asgi import encode_headers, outcome_head

_text = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=12)
_attempts = st.lists(st.builds(Attempt, model=_text, number=st.integers(1, 3),
                               error_kind=st.none() | st.just("timeout"), skipped=st.booleans()),
                     max_size=4)
_cost = st.none() | st.decimals(allow_nan=False, allow_infinity=False, places=None) \
    | st.sampled_from([Decimal("0"), Decimal("0E-12"), Decimal("1.5E+3"), Decimal("-0.00001230"),
                       Decimal("1E-7"), Decimal("-0E+3"), Decimal("12345678901234567890E-30")]) \
    | st.builds(Decimal.scaleb, st.decimals(allow_nan=False, allow_infinity=False),
                st.integers(-40, 40))
_headers = st.dictionaries(st.sampled_from(["x-llmroute-limit", "x-llmroute-model",
                                            "x-llmroute-experiment", "x-llmroute-policy",
                                            "x-llmroute-cost-usd", "retry-after"]), _text,
                           max_size=3)


@st.composite
def outcomes(draw: st.DrawFn) -> Outcome:
    plan = Plan(tuple(draw(st.lists(_text, max_size=2))), draw(_text), draw(_text),
                draw(st.none() | _text),
                draw(st.floats(allow_nan=True, allow_infinity=True) | st.integers(-5, 5)
                     | st.floats(0.0, 1.0) | st.integers(0, 2_000).map(lambda k: k / 2_000)),
                "reason", 10, router_attempts=tuple(draw(_attempts)),
                affinity=draw(st.none() | _text))
    return Outcome(draw(_text), plan, model=draw(_text), attempts=draw(_attempts),
                   cost_usd=draw(_cost), finished=draw(st.booleans()),
                   extra_headers=draw(st.just({}) | _headers))


@settings(max_examples=600, deadline=None)
@given(outcomes())
def test_the_head_equals_the_encoded_headers(outcome: Outcome) -> None:
    assert outcome_head(outcome) == encode_headers(outcome.headers())


def test_a_typical_outcome_without_extra_headers() -> None:
    plan = Plan(("a", "b"), "simple", "cascade", "default", 0.8125, "r", 10)
    outcome = Outcome("req-1", plan, model="a", cost_usd=Decimal("0.000012"), finished=True,
                      attempts=[Attempt("a", 1, "timeout"), Attempt("b", 1, None, skipped=True),
                                Attempt("a", 2, None)])
    assert outcome_head(outcome) == [
        (b"x-llmroute-request-id", b"req-1"), (b"x-llmroute-model", b"a"),
        (b"x-llmroute-tier", b"simple"), (b"x-llmroute-router", b"cascade"),
        (b"x-llmroute-confidence", b"0.812"), (b"x-llmroute-attempts", b"2"),
        (b"x-llmroute-policy", b"default"), (b"x-llmroute-cost-usd", b"0.000012")]
    assert outcome_head(outcome) == encode_headers(outcome.headers())
