"""`outcome.usage_of` reads a dict without the ABC check (issue 17, orch17), and gives what the
Mapping check gave for every kind of `usage` an upstream may send."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from llmroute.outcome import usage_of
from llmroute.types import Usage


def _old(payload: Mapping[str, Any]) -> Usage | None:
    usage = payload.get("usage")
    if not isinstance(usage, Mapping):
        return None
    details = usage.get("prompt_tokens_details")
    if not isinstance(details, Mapping):
        details = {}
    written = details.get("cache_write_tokens") or usage.get("cache_creation_input_tokens") or 0
    return Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0),
                 int(details.get("cached_tokens") or 0), int(written),
                 int(details.get("cache_write_1h_tokens") or 0))


_COUNT = st.one_of(st.none(), st.integers(0, 10**6))
_DETAILS = st.fixed_dictionaries({}, optional={"cached_tokens": _COUNT, "cache_write_tokens": _COUNT,
                                               "cache_write_1h_tokens": _COUNT})
_USAGE = st.fixed_dictionaries(
    {}, optional={"prompt_tokens": _COUNT, "completion_tokens": _COUNT,
                  "cache_creation_input_tokens": _COUNT,
                  "prompt_tokens_details": st.one_of(_DETAILS, _DETAILS.map(MappingProxyType),
                                                     st.none(), st.just([1]), st.just("x"))})
_KINDS = st.one_of(_USAGE, _USAGE.map(MappingProxyType), st.none(), st.just([]), st.just("usage"),
                   st.just(3))


@settings(max_examples=400, deadline=None)
@given(usage=_KINDS, present=st.booleans())
def test_usage_of_is_as_before(usage: Any, present: bool) -> None:
    payload: dict[str, Any] = {"usage": usage} if present else {}
    assert usage_of(payload) == _old(payload)
