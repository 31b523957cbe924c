"""Chaos in CI: a real gateway process (`llmroute serve`) in front of a tier whose primary fails 30 %
of its calls at random (429 with Retry-After, 500, 503, connection resets, hangs past the timeout,
slow streams, streams cut mid-answer), at concurrency 50, streaming and not.

Two tiers, two ways to be faulty: `solo`'s primary is on a provider of its own (Anthropic protocol),
`twin`'s is a second model of its fallback's provider (OpenAI protocol, one connection pool).
Checked: at least 99.9 % answered; every failure an OpenAI-shaped error; no stream that was cut
ends with `[DONE]`; every request in the ledger with its attempts; the gateway's upstream
connections, open files and memory back to where a warm-up under the same chaos left them, once
the upstream has closed the idle keep-alive connections (5 s).

A stream the upstream cuts after its first chunk reached the client cannot be retried (the client
already holds part of an answer): it ends with an error event, never `[DONE]`, and is counted
apart from the answered share (at most one per `cut_stream` fault the upstream drew).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from llmroute.ledger import open_store
from llmroute.testing.behaviours import Chaos, Ok
from llmroute.testing.procfs import open_fds, rss_bytes, tcp_states
from llmroute.testing.upstream import FakeUpstream

from .support import ENV, UPSTREAM_KEY, assert_openai_error

CONCURRENCY = 50
PER_SCENARIO = 3000
SCENARIOS = ("solo", "twin")
FAULTY = ("solo-up", "twin-up")
CHAOS = Chaos.uniform(0.3, retry_after_s=0.05, slow_chunk_delay_s=0.02)


@pytest.fixture(scope="module")
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=UPSTREAM_KEY, record=False, seed=14) as upstream:
        yield upstream


def config(up: FakeUpstream, ledger: Path) -> dict[str, Any]:
    timeout = {"connect_s": 1, "first_byte_s": 0.5, "total_s": 10}
    price = {"input_per_m": "1", "output_per_m": "2", "context_window": 100000}
    return {
        "providers": {
            "solo": {"type": "anthropic", "base_url": up.anthropic_base_url,
                     "api_key_env": "FAKE_ANTHROPIC_KEY", "timeout": timeout},
            "fake": {"type": "openai", "base_url": up.openai_base_url,
                     "api_key_env": "FAKE_OPENAI_KEY", "timeout": timeout},
        },
        "models": {
            "chaos/solo": {"deployment": "solo", "upstream_name": "solo-up", **price},
            "chaos/twin": {"deployment": "fake", "upstream_name": "twin-up", **price},
            "chaos/backup": {"deployment": "fake", "upstream_name": "backup-up", **price},
        },
        "tiers": {
            "simple": {"model": "chaos/solo", "fallbacks": ["chaos/backup"]},
            "medium": {"model": "chaos/twin", "fallbacks": ["chaos/backup"]},
            "complex": {"model": "chaos/backup"},
        },
        # no rules: each policy always picks its tier
        "policies": {"default": {"router": "rules", "rules": [], "default_tier": "simple"},
                     "solo": {"router": "rules", "rules": [], "default_tier": "simple"},
                     "twin": {"router": "rules", "rules": [], "default_tier": "medium"}},
        "ledger": {"url": f"sqlite:///{ledger}", "flush_interval_s": 0.05,
                   "spool_path": str(ledger.with_suffix(".spool"))},
        "resilience": {
            "deadline_s": 10,
            "retry": {"max_attempts": 2, "backoff_base_s": 0.01, "backoff_max_s": 0.02,
                      "jitter": 0, "max_retry_after_s": 1},
            # five failures in a row (0.24 % at 30 %) open a breaker: the primary keeps serving
            "cooldown": {"failures": 5, "cooldown_s": 0.2},
        },
    }


@dataclass
class Gateway:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # graceful: the ledger writer drains
            self.proc.wait(30)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def gateway(up: FakeUpstream, tmp_path: Path) -> Iterator[Gateway]:
    path = tmp_path / "llmroute.yaml"
    path.write_text(yaml.safe_dump(config(up, tmp_path / "ledger.db"), sort_keys=False))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LLMROUTE")}, **ENV}
    port, log = free_port(), tmp_path / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "llmroute", "serve", "-c", str(path),
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    gw = Gateway(proc, f"http://127.0.0.1:{port}", log)
    try:
        asyncio.run(wait_ready(gw))
        yield gw
    finally:
        gw.stop()
        if proc.poll() is None:
            proc.kill()


async def wait_ready(gw: Gateway) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            assert gw.proc.poll() is None, gw.log.read_text()
            try:
                async with session.get(gw.url + "/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"the gateway did not start: {gw.log.read_text()}")


@dataclass
class Result:
    """One request as the client saw it."""

    scenario: str
    stream: bool
    status: int
    request_id: str | None
    attempts: int | None
    answered: bool
    model: str | None = None
    #: "cut": a stream that failed after its first chunk (an error event, no [DONE]).
    failure: str | None = None
    error: dict[str, Any] = field(default_factory=dict)


async def read_sse(response: aiohttp.ClientResponse) -> tuple[list[dict[str, Any]], bool]:
    """The stream's JSON events and whether it ended with `[DONE]` (nothing may follow it)."""
    events: list[dict[str, Any]] = []
    done = False
    async for raw in response.content:
        line = raw.decode().strip()
        if not line:
            continue
        assert not done, f"data after [DONE]: {line!r}"
        assert line.startswith("data: "), line
        if line == "data: [DONE]":
            done = True
        else:
            events.append(json.loads(line[6:]))
    return events, done


async def one(session: aiohttp.ClientSession, url: str, scenario: str, stream: bool,
              number: int) -> Result:
    prompt = f"chaos {number}: say hello"
    body = {"model": f"auto/{scenario}", "stream": stream,
            "messages": [{"role": "user", "content": prompt}]}
    async with session.post(url + "/v1/chat/completions", json=body) as response:
        rid = response.headers.get("x-llmroute-request-id")
        tried = response.headers.get("x-llmroute-attempts")
        model = response.headers.get("x-llmroute-model")
        result = Result(scenario, stream, response.status, rid, int(tried) if tried else None,
                        answered=False, model=model)
        whole = f"echo from {(model or '').removeprefix('chaos/')}-up: {prompt}"  # nothing lost
        if response.status != 200:
            result.error = assert_openai_error(await response.json())
            result.failure = f"http_{response.status}"
        elif not stream:
            answer = await response.json()
            assert answer["choices"][0]["message"]["content"] == whole
            result.answered = True
        else:
            events, done = await read_sse(response)
            errors = [e for e in events if "error" in e]
            assert not (errors and done), "a failed stream ended with [DONE]"
            if done:
                text = "".join(c["delta"].get("content") or "" for e in events
                               for c in e.get("choices", []))
                assert text == whole, "a stream ended with [DONE] but not with its whole answer"
                result.answered = True
            else:
                assert errors, "a stream ended with neither [DONE] nor an error event"
                result.error = assert_openai_error(errors[-1])
                result.failure = "cut"
        return result


async def drive(url: str, count_per_scenario: int) -> list[Result]:
    """Every request of both scenarios, half of them streamed, `CONCURRENCY` at a time."""
    jobs = [(s, i % 2 == 0, i) for i in range(count_per_scenario) for s in SCENARIOS]
    queue: asyncio.Queue[tuple[str, bool, int]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    results: list[Result] = []
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def worker() -> None:
            while not queue.empty():
                scenario, stream, number = queue.get_nowait()
                results.append(await one(session, url, scenario, stream, number))

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return results


@dataclass(frozen=True)
class Held:
    """What the gateway process holds."""

    upstream_conns: int
    states: dict[str, int]
    fds: int
    rss_mib: float


#: The fake upstream (uvicorn) closes a connection idle for 5 s; the gateway's pool then drops it.
IDLE_CLOSED_S = 6.0


def held(gw: Gateway, up: FakeUpstream) -> Held:
    """What the gateway holds once idle connections have been closed by the upstream."""
    time.sleep(IDLE_CLOSED_S)
    pid = gw.proc.pid
    states = tcp_states(pid, up.port)
    return Held(sum(states.values()), dict(states), open_fds(pid), rss_bytes(pid) / 2**20)


def ledger_entries(ledger: Path, ids: list[str]) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        store = open_store(f"sqlite:///{ledger}")
        try:
            return {rid: await store.get(rid) for rid in ids}
        finally:
            await store.close()

    return asyncio.run(read())


def test_a_thirty_percent_faulty_primary_at_concurrency_50(up: FakeUpstream, gateway: Gateway,
                                                           tmp_path: Path) -> None:
    up.set_default("*", Ok())
    for model in FAULTY:
        up.set_default(model, CHAOS)
    asyncio.run(drive(gateway.url, 300))  # warm-up under chaos: pools, caches, arenas
    before = held(gateway, up)
    up.reset()  # counts and the seed start again
    up.set_default("*", Ok())
    for model in FAULTY:
        up.set_default(model, CHAOS)

    started = time.monotonic()
    results = asyncio.run(drive(gateway.url, PER_SCENARIO))
    elapsed = time.monotonic() - started
    after = held(gateway, up)

    faults = up.faults
    assert all(faults.get(name, 0) >= 10 for name in CHAOS.odds()), faults  # every fault played
    cuts = [r for r in results if r.failure == "cut"]
    assert all(r.stream for r in cuts)
    assert len(cuts) <= faults["cut_stream"]
    counted = [r for r in results if r.failure != "cut"]
    answered = sum(r.answered for r in counted) / len(counted)
    failures = Counter(r.failure for r in results if not r.answered)
    print(f"\n{len(results)} requests in {elapsed:.1f}s; answered {answered:.4%} of "
          f"{len(counted)}; failures {dict(failures)}; faults {faults}; {before} -> {after}")
    assert answered >= 0.999, failures
    for scenario in SCENARIOS:  # the faulty primary still serves: its breaker is not always open
        served = sum(r.answered and r.model == f"chaos/{scenario}" for r in results
                     if r.scenario == scenario)
        assert served >= 0.5 * PER_SCENARIO, (scenario, served)

    # idle keep-alive connections are gone, as after the warm-up: none leaked by a fault (a socket
    # the upstream reset or cut and the gateway never closed would linger, e.g. in CLOSE_WAIT)
    assert after.upstream_conns <= before.upstream_conns + 2, (before, after)
    assert after.fds <= before.fds + 2, (before, after)
    assert after.rss_mib <= before.rss_mib + 20, (before, after)  # ≈ +4 MiB seen

    gateway.stop()  # drains the ledger writer
    ids = [r.request_id for r in results]
    assert None not in ids and len(set(ids)) == len(ids)
    entries = ledger_entries(tmp_path / "ledger.db", [i for i in ids if i])
    for result in results:
        entry = entries[result.request_id]
        assert entry is not None, f"{result.request_id} missing from the ledger"
        tried = [a for a in entry.attempts if not a.skipped]
        assert tried, entry
        assert entry.status == ("ok" if result.answered else "error"), (result, entry)
        if result.attempts is not None:
            assert len(tried) == result.attempts, (result, entry.attempts)
        if result.answered:
            assert entry.model is not None and tried[-1].error_kind is None
