"""Every upstream failure maps to one of our error kinds (OpenAI-compatible edge + transport)."""

from __future__ import annotations

import pytest

from llmroute.errors import UPSTREAM_KINDS, UpstreamError
from llmroute.providers import h1, openai_errors
from llmroute.providers.base import parse_retry_after
from llmroute.providers.http import TRANSPORT_ERRORS, RedirectRefused, transport_error


def _all_subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_all_subclasses(sub)}
    return found


@pytest.mark.parametrize("status", range(400, 600))
def test_every_error_status_maps_to_a_kind(status: int) -> None:
    error = openai_errors.from_response(status, b'{"error": {"message": "x"}}', {}, "p", "m")
    assert isinstance(error, UpstreamError) and error.kind in UPSTREAM_KINDS


@pytest.mark.parametrize("exc_type", sorted(_all_subclasses(h1.H1Error),
                                            key=lambda t: t.__name__))
def test_every_transport_error_maps_to_timeout_or_connection(exc_type: type) -> None:
    exc = exc_type.__new__(exc_type)  # some need a live connection to build; the type is what counts
    assert isinstance(exc, TRANSPORT_ERRORS)
    error = transport_error(exc, "p", "m")
    # a refused redirect is a misconfigured base URL: not retried, the next model is tried
    expected = ("timeout" if issubclass(exc_type, TimeoutError) else
                "not_found" if exc_type is RedirectRefused else "connection")
    assert error.kind == expected
    assert error.message.startswith("p " + expected)


def test_transport_errors_name_what_happened() -> None:
    slow = transport_error(h1.ReadTimeout("slow"), "p", "m")
    assert slow.kind == "timeout" and "ReadTimeout: slow" in slow.message
    assert "ConnectTimeout" in transport_error(h1.ConnectTimeout(), "p", "m").message
    assert transport_error(TimeoutError(), "p", "m").kind == "timeout"
    refused = transport_error(h1.ConnectError("refused"), "p", "m")
    assert refused.kind == "connection" and "ConnectError" in refused.message
    dropped = transport_error(h1.RemoteProtocolError(), "p", "m")
    assert dropped.kind == "connection" and "RemoteProtocolError" in dropped.message


@pytest.mark.parametrize(("status", "body", "kind"), [
    (429, {"error": {"code": "rate_limit_exceeded", "message": "slow down"}}, "rate_limit"),
    (429, {"error": {"code": "insufficient_quota", "message": "You exceeded your current quota"}},
     "payment"),
    (402, {"error": {"message": "Insufficient credits"}}, "payment"),
    (400, {"error": {"code": "context_length_exceeded", "message": "too long"}}, "context_window"),
    (400, {"error": {"message": "This model's maximum context length is 8192 tokens"}},
     "context_window"),
    (400, {"error": {"code": "content_policy_violation", "message": "no"}}, "content_policy"),
    (400, {"error": {"code": "content_filter", "message": "filtered"}}, "content_policy"),
    (400, {"error": {"message": "Invalid value for 'temperature'"}}, "bad_request"),
    (422, {"detail": "bad"}, "bad_request"),
    (401, {"error": {"message": "Incorrect API key provided"}}, "auth"),
    (403, {"error": {"message": "forbidden"}}, "permission"),
    (404, {"error": {"message": "The model does not exist"}}, "not_found"),
    (408, {}, "timeout"),
    (500, {}, "server"),
    (502, {}, "server"),
    (503, {}, "overloaded"),
    (504, {}, "timeout"),
    (529, {}, "overloaded"),
])
def test_known_cases(status: int, body: dict[str, object], kind: str) -> None:
    import json

    error = openai_errors.from_response(status, json.dumps(body).encode(), {}, "prov", "model-x")
    assert error.kind == kind
    assert error.upstream_status == status


def test_non_json_error_bodies_are_tolerated() -> None:
    error = openai_errors.from_response(502, b"<html>Bad gateway</html>", {}, "prov", "m")
    assert error.kind == "server" and "Bad gateway" in error.message


def test_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "garbage"}) is None
    http_date = parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert http_date == 0.0  # a date in the past means "now"
    error = openai_errors.from_response(429, b"{}", {"retry-after": "7"}, "p", "m")
    assert error.retry_after == 7.0
