"""`Accountant.entry` hands its dict literal to `LedgerEntry.of_ordered`, which trusts the order:
for answered and failed requests alike the entry holds every field in declaration order and is the
entry `LedgerEntry(...)` builds from the same values, with the same WAL line."""

from __future__ import annotations

import operator
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import default_settings
from llmroute.accounting import Accountant, attempts_of, prompt_text
from llmroute.catalog import Catalog
from llmroute.control.admission import shadow_json
from llmroute.errors import InvalidRequestError, LLMRouteError, UnavailableError
from llmroute.ledger.entry import _FIELD_NAMES, AttemptRecord, LedgerEntry
from llmroute.ledger.wal import encode
from llmroute.outcome import Outcome, Plan
from llmroute.resilience import Attempt
from llmroute.settings import LedgerConfig
from llmroute.types import Usage

CATALOG = Catalog.from_settings(default_settings())
MODELS = ["openai/gpt-4.1", "openai/gpt-4.1-mini", "anthropic/claude-sonnet-4", "nobody/unknown", ""]
TS = datetime(2026, 12, 6, 17, 0, tzinfo=UTC)
_LATENCY = operator.attrgetter("latency_s")
_NO_METADATA: Mapping[str, Any] = MappingProxyType({})

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


def _entry_before(acc: Accountant, *, request_id: str, started: float, now: float,
                  outcome: Outcome | None, error: LLMRouteError | None, body: dict[str, Any],
                  key_name: str | None, stream: bool, ttft_s: float | None = None,
                  response: str | None = None) -> LedgerEntry:
    """`Accountant.entry` before cut17d (its 46-key dict literal), kept verbatim."""
    attempts = attempts_of(outcome, error)
    plan = outcome.plan if outcome is not None else None
    routing = plan.routing_cost_usd if plan is not None else None
    usage = outcome.usage if outcome is not None else None
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        user = None
    raw_metadata = body.get("metadata")  # None or a dict, mostly: no ABC check for those
    metadata: Mapping[str, Any] = (
        raw_metadata if raw_metadata.__class__ is dict or isinstance(raw_metadata, Mapping)
        else _NO_METADATA) if raw_metadata is not None else _NO_METADATA
    return LedgerEntry.of_ordered({  # every field in declaration order: kept as the entry's dict
        "request_id": request_id,
        "ts": datetime.now(UTC),
        "status": "error" if error else "ok",
        "http_status": error.status if error else 200,
        "key_name": key_name,
        "user": user,
        "session": str(metadata.get("session_id")) if metadata.get("session_id") else None,
        "policy": plan.policy if plan else None,
        "router": plan.router if plan else None,
        "tier": plan.tier if plan else None,
        "confidence": plan.confidence if plan else None,
        "reason": plan.reason if plan else None,
        "experiment_arm": outcome.experiment_arm if outcome else None,
        "model": (outcome.model or None) if outcome else None,
        "attempts": tuple(map(AttemptRecord.from_attempt, attempts)),
        "error_type": error.type if error else None,
        "error_code": error.code if error else None,
        "stream": stream,
        "latency_s": now - started,
        "ttft_s": ttft_s,
        "upstream_latency_s": sum(map(_LATENCY, attempts)) or None,
        "input_tokens": usage.input_tokens if usage else None,
        "output_tokens": usage.output_tokens if usage else None,
        "cached_tokens": usage.cached_input_tokens if usage else None,
        "usage_estimated": bool(outcome and outcome.usage_estimated),
        "cost_usd": (outcome.cost_usd if outcome.finished else routing) if outcome else None,
        "baseline_cost_usd": acc.baseline_cost(usage),
        "baseline_model": acc.baseline_model,
        "prompt_text": acc._text(prompt_text(body)) if acc.store_text else None,
        "response_text": acc._text(response),
        "user_rating": None,
        "task_success": None,
        "feedback_comment": None,
        "feedback_ts": None,
        "shadow": shadow_json(outcome.shadow) if outcome and outcome.shadow else None,
        "explored": bool(plan and plan.explored),
        "latent": plan.latent if plan else None,
        "routing_cost_usd": routing,
        "cache_write_tokens": usage.cache_write_tokens if usage else None,
        "prompt_cache_saved_usd": acc.prompt_cache_saved(outcome),
        "cache": outcome.cache if outcome else None,
        "cache_saved_usd": outcome.cache_saved_usd if outcome else None,
        "cached_from": outcome.cached_from if outcome else None,
        "cache_similarity": outcome.cache_similarity if outcome else None,
    })


@settings(max_examples=400, deadline=None)
@given(outcome=st.none() | outcomes(), error=ERRORS, body=bodies, store_text=st.booleans(),
       response=texts, key_name=texts, stream=st.booleans(), ttft_s=st.none() | st.floats(0, 2),
       baseline=st.sampled_from(MODELS[:4]))
def test_the_filled_blank_entry_is_the_former_literals(
        outcome: Outcome | None, error: LLMRouteError | None, body: dict[str, Any],
        store_text: bool, response: str | None, key_name: str | None, stream: bool,
        ttft_s: float | None, baseline: str) -> None:
    """The entry filled into `blank_fields()` (issue 17, cut17d) is the one the former dict
    literal built: every field's value, its order, the WAL line."""
    accountant = Accountant(CATALOG, baseline, LedgerConfig(store_text=store_text))
    args: dict[str, Any] = dict(request_id="req_1", started=1.0, now=1.25, outcome=outcome,
                                error=error, body=body, key_name=key_name, stream=stream,
                                ttft_s=ttft_s, response=response)
    entry, before = accountant.entry(**args), _entry_before(accountant, **args)
    assert fields_of(entry) == fields_of(before)
    assert entry == before
