"""`chat.with_headers`: the routing and caching controls a caller sends as headers, read in one
pass in any case (the hot routes' headers are lower-case, the Client's as the caller wrote them)."""

from __future__ import annotations

import pytest

from llmroute.cache.directive import CacheDirective
from llmroute.chat import EXPLORE_KEY, SESSION_KEY, ChatRequest, chat_request, with_headers
from llmroute.errors import InvalidRequestError


def _req() -> ChatRequest:
    return chat_request({"model": "auto", "messages": [{"role": "user", "content": "hi"}]})


def test_no_control_header_leaves_the_request_as_it_is() -> None:
    req = _req()
    assert with_headers(req, {"authorization": "Bearer k", "user-agent": "x"}) is req


@pytest.mark.parametrize("case", [str.lower, str.title, str.upper])
def test_every_control_is_read_in_any_case(case: object) -> None:
    assert callable(case)
    headers = {case("Cache-Control"): "no-cache", case("x-llmroute-cache-ttl"): "60",
               case("x-llmroute-explore"): " False ", case("x-llmroute-session"): " conv-1 ",
               case("authorization"): "Bearer k"}
    req = with_headers(_req(), headers)
    assert req.cache == CacheDirective(read=False, write=True, ttl_s=60.0)
    assert dict(req.metadata) == {EXPLORE_KEY: "false", SESSION_KEY: "conv-1"}


@pytest.mark.parametrize(("name", "value"), [("X-LLMRoute-Explore", "maybe"),
                                             ("x-llmroute-session", "  "),
                                             ("x-llmroute-cache-ttl", "0")])
def test_a_bad_control_is_a_400_naming_the_header(name: str, value: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        with_headers(_req(), {name: value})
    assert caught.value.status == 400 and caught.value.param == name.lower()


@pytest.mark.parametrize("headers", [
    {"authorization": "Bearer k", "user-agent": "x"},
    {"cache-control": "no-cache", "x-llmroute-cache-ttl": "60", "x-llmroute-explore": " False ",
     "x-llmroute-session": " conv-1 ", "authorization": "Bearer k"},
    {"cache-control": "no-store", "x-llmroute-session": "s"},
    {"x-llmroute-explore": "maybe"}, {"x-llmroute-session": "  "}, {"x-llmroute-cache-ttl": "0"},
])
def test_lower_case_names_read_by_lookup_give_what_the_pass_gives(headers: dict[str, str]) -> None:
    """The hot routes' headers (lower-case, `lowered=True`): the same request or the same 400."""
    def judged(lowered: bool) -> object:
        try:
            return with_headers(_req(), headers, lowered=lowered)
        except InvalidRequestError as exc:
            return (exc.status, exc.param, exc.message)

    assert judged(True) == judged(False)
