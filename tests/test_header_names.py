"""cut17e: header names looked up in a table of known ones instead of decoded per header: the
request's headers (`server.asgi.request_headers`) and the upstream answer's (`h1._Conn`) are
the same dicts as the per-header decoding gave, for known names, other casings, unknown and
non-ASCII names, repeats and the empty name."""

from __future__ import annotations

import random

import pytest

from llmroute.header_names import ANSWER_NAMES, REQUEST_NAMES
from llmroute.providers import h1
from llmroute.server import asgi

OTHER = [b"", b"x-\xe9t\xe9", b"X-\xc9T\xc9", b"x-llmroute-explore", b"Content-type",
         b"CONTENT-LENGTH", b"x-custom", b"host ", b"authorization\x00"]


def _names() -> list[bytes]:
    known = [*REQUEST_NAMES, *ANSWER_NAMES]
    return [*known, *(n.upper() for n in known), *(n.title() for n in known), *OTHER]


def _old_request_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """`request_headers` before cut17e, verbatim."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in reversed(raw)}


def _old_answer_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """`_Conn.on_header` before cut17e, verbatim, over every header."""
    headers: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


def test_the_tables_hold_what_decoding_gives() -> None:
    assert all(value == name.decode("latin-1") for name, value in REQUEST_NAMES.items())
    assert all(value == name.decode("latin-1").lower() for name, value in ANSWER_NAMES.items())


@pytest.mark.parametrize("seed", range(200))
def test_the_headers_are_the_decoded_ones(seed: int) -> None:
    rng = random.Random(seed)
    names = _names()
    raw = [(rng.choice(names), bytes(rng.randrange(256) for _ in range(rng.randrange(6))))
           for _ in range(rng.randrange(12))]
    raw += rng.sample(raw, min(len(raw), 2))  # repeated headers
    got = asgi.request_headers({"headers": raw})
    assert got == _old_request_headers(raw) and list(got) == list(_old_request_headers(raw))
    conn = h1._Conn()
    for name, value in raw:
        conn.on_header(name, value)
    assert conn.headers == _old_answer_headers(raw)
    assert list(conn.headers) == list(_old_answer_headers(raw))
