"""The response cache shared through Redis by two `llmroute serve` processes: an answer stored by
one replica is a hit on the other, identical concurrent misses on both make one upstream call,
and a Redis that cannot be reached leaves requests served uncached (bypass), never failed."""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llmroute.testing.behaviours import Ok
from llmroute.testing.redis_tools import TEST_REDIS_URL, drop_prefix, redis_unreachable
from llmroute.testing.upstream import FakeUpstream

from .test_serve_process import serve, stop

pytestmark = pytest.mark.skipif(redis_unreachable() is not None,
                                reason=redis_unreachable() or "")


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream(record=True) as upstream:
        upstream.set_default("*", Ok())
        yield upstream


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"llmroute-test-cache-{os.getpid()}-{os.urandom(4).hex()}:"
    yield name
    drop_prefix(name)


def sections(url: str, prefix: str) -> dict[str, object]:
    return {"state": {"url": url, "prefix": prefix},
            "cache": {"response": {"enabled": True}}}


def ask(url: str, text: str) -> httpx.Response:
    body = {"model": "fake/a", "messages": [{"role": "user", "content": text}], "temperature": 0}
    response = httpx.post(url + "/v1/chat/completions", json=body, timeout=20)
    assert response.status_code == 200, response.text
    return response


@pytest.fixture
def replicas(up: FakeUpstream, tmp_path: Path, prefix: str
             ) -> Iterator[tuple[str, str]]:
    procs: list[subprocess.Popen[bytes]] = []
    urls = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        proc, url, _ = serve(up, folder, sections=sections(TEST_REDIS_URL, prefix))
        procs.append(proc)
        urls.append(url)
    yield urls[0], urls[1]
    for proc in procs:
        stop(proc)


def test_an_answer_stored_by_one_replica_is_a_hit_on_the_other(
        replicas: tuple[str, str], up: FakeUpstream) -> None:
    a, b = replicas
    first = ask(a, "shared question")
    again = ask(b, "shared question")
    assert first.headers["x-llmroute-cache"] == "miss"
    assert again.headers["x-llmroute-cache"] == "hit"
    assert again.json()["choices"] == first.json()["choices"]
    assert up.call_count() == 1


def test_identical_misses_on_two_replicas_make_one_upstream_call(
        replicas: tuple[str, str], up: FakeUpstream) -> None:
    up.set_default("*", Ok(delay_s=0.5))
    a, b = replicas
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda i: ask((a, b)[i % 2], "stampede"), range(8)))
    assert up.call_count() == 1
    states = sorted(r.headers["x-llmroute-cache"] for r in responses)
    assert states == ["hit"] * 7 + ["miss"]


def test_an_unreachable_redis_serves_uncached(up: FakeUpstream, tmp_path: Path) -> None:
    proc, url, log = serve(up, tmp_path, sections=sections("redis://127.0.0.1:1/0", "x:"))
    try:
        responses = [ask(url, "no redis") for _ in range(3)]
    finally:
        stop(proc)
    assert [r.headers["x-llmroute-cache"] for r in responses] == ["bypass"] * 3
    assert up.call_count() == 3
    assert log.read_text().count("response cache store unreachable") == 1
