"""`Accountant.entry` hands its dict literal to `LedgerEntry.of_ordered`, which trusts the order:
for answered and failed requests alike the entry holds every field in declaration order and is the
entry `LedgerEntry(...)` builds from the same values, with the same WAL line."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import default_settings
from llmroute.accounting import Accountant
from llmroute.catalog import Catalog
from llmroute.errors import InvalidRequestError, LLMRouteError, UnavailableError
from llmroute.ledger.entry import _FIELD_NAMES, LedgerEntry
from llmroute.ledger.wal import encode
from llmroute.outcome import Outcome, Plan
from llmroute.resilience import Attempt
from llmroute.settings import LedgerConfig
from llmroute.types import Usage

CATALOG = Catalog.from_settings(default_settings())
MODELS = ["openai/gpt-4.1", "openai/gpt-4.1-mini", "anthropic/claude-sonnet-4", "nobody/unknown", ""]
TS = datetime(2026, 12, 6, 17, 0, tzinfo=UTC)

texts = st.none() | st.text(max_size=8)
money = st.none() | st.decimals(allow_nan=False, allow_infinity=False, places=6,
                                min_value=Decimal(0), max_value=Decimal(10))
attempts = st.builds(Attempt, model=st.sampled_from(MODELS), number=st.integers(0, 3),
                     error_kind=st.none() | st.sampled_from(["timeout", "rate_limited"]),
                     message=st.text(max_size=5), status=st.none() | st.integers(200, 599),
                     latency_s=st.floats(0, 5), skipped=st.booleans(), router=st.booleans())
usages = st.none() | st.builds(Usage, st.integers(0, 5000), st.integers(0, 5000),
                               st.integers(0, 100), st.integers(0, 100), st.integers(0, 10))
plans = st.builds(Plan, chain=st.just(("openai/gpt-4.1",)), tier=st.sampled_from(["simple", "hard"]),
                  router=st.sampled_from(["cascade", "llm"]), policy=texts,
                  confidence=st.floats(0, 1), reason=st.text(max_size=8),
                  input_tokens=st.integers(0, 100), explored=st.booleans(), latent=texts,
                  router_attempts=st.lists(attempts, max_size=2).map(tuple),
                  routing_cost_usd=money)


@st.composite
def outcomes(draw: st.DrawFn) -> Outcome:
    outcome = Outcome(draw(st.text(min_size=1, max_size=6)), draw(plans),
                      model=draw(st.sampled_from(MODELS)), attempts=draw(st.lists(attempts, max_size=3)),
                      usage=draw(usages), usage_estimated=draw(st.booleans()), cost_usd=draw(money),
                      finished=draw(st.booleans()), experiment_arm=draw(texts),
                      shadow=draw(st.lists(st.fixed_dictionaries({"arm": st.text(max_size=3)}),
                                           max_size=2)),
                      cache=draw(st.none() | st.sampled_from(["hit", "semantic", "miss", "bypass"])),
                      cache_saved_usd=draw(money), cached_from=draw(texts),
                      cache_similarity=draw(st.none() | st.floats(0, 1)))
    return outcome


bodies = st.fixed_dictionaries(
    {"messages": st.just([{"role": "user", "content": "hi"}])},
    optional={"user": st.none() | st.text(max_size=4) | st.integers(),
              "metadata": st.none() | st.integers() | st.dictionaries(
                  st.sampled_from(["session_id", "x"]),
                  st.none() | st.text(max_size=3) | st.integers(0, 3), max_size=2)})


def fields_of(entry: LedgerEntry) -> tuple[list[tuple[str, Any]], bytes]:
    """The entry's fields in order (its time aside) and its WAL line at a fixed time."""
    object.__setattr__(entry, "ts", TS)
    return list(entry.__dict__.items()), encode(entry)


ERRORS = st.none() | st.sampled_from([UnavailableError("every model failed"),
                                      InvalidRequestError("bad", param="messages")])


@settings(max_examples=400, deadline=None)
@given(outcome=st.none() | outcomes(), error=ERRORS, body=bodies, store_text=st.booleans(),
       response=texts, key_name=texts, stream=st.booleans(), ttft_s=st.none() | st.floats(0, 2),
       baseline=st.sampled_from(MODELS[:4]))
def test_the_entry_holds_every_field_in_order_as_init_builds_it(
        outcome: Outcome | None, error: LLMRouteError | None, body: dict[str, Any],
        store_text: bool, response: str | None, key_name: str | None, stream: bool,
        ttft_s: float | None, baseline: str) -> None:
    accountant = Accountant(CATALOG, baseline, LedgerConfig(store_text=store_text))
    entry = accountant.entry(request_id="req_1", started=1.0, now=1.25, outcome=outcome,
                             error=error, body=body, key_name=key_name, stream=stream,
                             ttft_s=ttft_s, response=response)
    assert tuple(entry.__dict__) == _FIELD_NAMES  # what `of_ordered` does not check
    rebuilt = LedgerEntry(**entry.__dict__)
    assert fields_of(entry) == fields_of(rebuilt)
    assert entry == rebuilt
