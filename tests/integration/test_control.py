"""The control plane (issue 11) across replicas: real `llmroute serve` processes sharing one Redis
(a fresh `state.prefix` per test) and one PostgreSQL ledger schema (a throwaway one per test).

Numbers used throughout (prices in control_support.PRICES, per token: fake/big $0.001 in, $0.005
out; fake/small $0.00001 in, $0.00005 out). A request is one user message of 40 characters with
`max_tokens: 20`, and the fake upstream answers 36 characters:
  - admission's estimate: ceil(40 / 4) + 4 (per message) + 3 = 17 input tokens, and 20 output
    tokens (max_tokens), priced at the chain's dearest model;
  - the upstream's usage: 40 // 4 + 1 = 11 input tokens, 36 // 4 + 1 = 10 output tokens.
So on fake/big a reservation is 17 * 0.001 + 20 * 0.005 = $0.117 and the real cost
11 * 0.001 + 10 * 0.005 = $0.061; on fake/small $0.00117 and $0.00061.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import openai
import pytest

from llmroute.testing.behaviours import Ok, SlowStream
from llmroute.testing.redis_tools import drop_prefix, redis_unreachable
from llmroute.testing.upstream import FakeUpstream

from .control_support import (
    POSTGRES_DSN,
    Key,
    ProxyThread,
    Replica,
    clear_of_boundaries,
    cost,
    counters,
    drop_schema,
    gateway_config,
    ledger_entries,
    nano,
    next_boundary,
    postgres_unreachable,
    start_replicas,
    stop_replicas,
    stored_value,
    wait_for_ledger,
    wait_until,
)

PROMPT = [{"role": "user", "content": "x" * 40}]
ANSWER = "a" * 36
MAX_TOKENS = 20
#: Admission's estimate and the upstream's usage of one request (see the module docstring).
EST_IN, EST_OUT, REAL_IN, REAL_OUT = 17, MAX_TOKENS, 11, 10
BIG_RESERVED = cost("fake/big", EST_IN, EST_OUT)
BIG_COST = cost("fake/big", REAL_IN, REAL_OUT)
SMALL_COST = cost("fake/small", REAL_IN, REAL_OUT)
UTC_ZONE = ZoneInfo("UTC")

Launch = Callable[..., list[Replica]]
Config = Callable[..., dict[str, Any]]


def test_hand_computed_numbers() -> None:
    computed = (BIG_RESERVED, BIG_COST, SMALL_COST)
    assert computed == (Decimal("0.117"), Decimal("0.061"), Decimal("0.00061"))


# -- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


@pytest.fixture
def up(upstream: FakeUpstream) -> Iterator[FakeUpstream]:
    upstream.reset()
    upstream.set_default("*", Ok(text=ANSWER))
    yield upstream
    upstream.reset()


@pytest.fixture
def prefix() -> Iterator[str]:
    """A fresh Redis key prefix (skips when Redis is down); its keys are deleted afterwards."""
    why = redis_unreachable()
    if why is not None:
        pytest.skip(why)
    name = f"llmroute-test:{uuid.uuid4().hex}:"
    yield name
    drop_prefix(name)


@pytest.fixture
def ledger_url() -> Iterator[str]:
    """A throwaway PostgreSQL schema for the replicas' shared ledger (skips when PostgreSQL is
    down); dropped afterwards."""
    why = postgres_unreachable()
    if why is not None:
        pytest.skip(why)
    schema = f"llmroute_control_{uuid.uuid4().hex[:12]}"
    yield f"{POSTGRES_DSN}?schema={schema}"
    drop_schema(schema)


@pytest.fixture
def config(up: FakeUpstream, prefix: str, tmp_path: Path) -> Config:
    """`gateway_config` for this test's upstream, prefix and directory."""
    def make(name: str, **options: Any) -> dict[str, Any]:
        return gateway_config(up, prefix, tmp_path, name=name, **options)

    return make


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launch]:
    """Start replicas (each from its config, all at once); all are stopped after the test, and
    their logs printed (pytest shows them when the test fails)."""
    started: list[Replica] = []

    def start(*configs: dict[str, Any]) -> list[Replica]:
        replicas = [Replica(f"replica-{len(started) + i}", c, tmp_path)
                    for i, c in enumerate(configs)]
        started.extend(replicas)
        start_replicas(replicas)
        return replicas

    yield start
    try:
        stop_replicas(started)
    finally:
        for replica in started:
            replica.kill()
            print(f"--- {replica.name} ---\n{replica.log()}")


# -- helpers --------------------------------------------------------------------------------------
def ask(client: openai.OpenAI, **options: Any) -> Any:
    """One chat completion (the standard prompt); returns the raw response (headers + parse())."""
    body: dict[str, Any] = {"model": "auto", "messages": PROMPT, "max_tokens": MAX_TOKENS}
    body.update(options)
    return client.chat.completions.with_raw_response.create(**body)


def budgets(replica: Replica, key: Key | None = None, user: str | None = None
            ) -> dict[str, dict[str, Any]]:
    """GET /v1/budgets as `key` (and the user header), by limit name."""
    headers = {"x-llmroute-user": user} if user else {}
    with replica.http(key) as http:
        response = http.get("/v1/budgets", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list"
    return {item["name"]: item for item in body["data"]}


def retry_after_bounds(end: datetime, before: datetime, after: datetime) -> tuple[int, int]:
    """The `retry-after` a refusal decided between `before` and `after` can carry: whole seconds
    (rounded up, at least 1) until `end`."""
    return (max(1, math.ceil((end - after).total_seconds())),
            max(1, math.ceil((end - before).total_seconds())))


def ready(replica: Replica) -> httpx.Response:
    with replica.http() as http:
        return http.get("/ready")


# -- 1. one global budget, two replicas, 64 concurrent requests ----------------------------------
def test_global_budget_is_never_overspent_across_replicas(
        up: FakeUpstream, config: Config, launch: Launch, prefix: str, ledger_url: str) -> None:
    up.set_default("big-up", Ok(text=ANSWER, delay_s=0.2))  # every request overlaps the others
    limits = [{"name": "global-usd", "scope": "global", "window": "day", "usd": "1"}]
    a, b = launch(config("a", limits=limits, ledger_url=ledger_url),
                  config("b", limits=limits, ledger_url=ledger_url))
    clear_of_boundaries(["day"], UTC_ZONE, margin_s=15)

    async def fire() -> tuple[list[tuple[int, Any, Any]], datetime, datetime]:
        clients = [a.aclient(), b.aclient()]

        async def one(i: int) -> tuple[int, Any, Any]:
            try:
                raw = await clients[i % 2].chat.completions.with_raw_response.create(
                    model="auto", messages=PROMPT, max_tokens=MAX_TOKENS)
                return 200, raw.headers, raw.parse()
            except openai.APIStatusError as exc:
                return exc.status_code, exc.response.headers, exc.response.json()

        before = datetime.now(UTC)
        results = await asyncio.gather(*(one(i) for i in range(64)))
        after = datetime.now(UTC)
        for client in clients:
            await client.close()
        return list(results), before, after

    results, before, after = asyncio.run(fire())
    served = [(h, r) for status, h, r in results if status == 200]
    refused = [(status, h, body) for status, h, body in results if status != 200]

    # At admission the counter is (settled real costs) + (reservations in flight) and a request
    # is refused only when the counter plus its reservation would pass $1: so whenever a request
    # is refused, at least floor(1 / 0.117) = 8 reservations are in flight or settled, and at least
    # 8 requests are served. Settlement lowers a reservation to the real cost (0.061 <= 0.117: the
    # in-flight excess of real over reserved is 0), so the counter never passes $1, and at most
    # floor(1 / 0.061) = 16 requests can be served.
    assert 8 <= len(served) <= 16, len(served)
    assert len(served) + len(refused) == 64
    for headers, completion in served:
        assert completion.model == "fake/big"
        assert completion.usage.prompt_tokens == REAL_IN
        assert completion.usage.completion_tokens == REAL_OUT
        assert headers["x-llmroute-cost-usd"] == "0.061"
    end = next_boundary("day", before, UTC_ZONE)
    low, high = retry_after_bounds(end, before, after)
    for status, headers, body in refused:
        assert status == 429, body
        assert body["error"]["code"] == "budget_exceeded"
        assert body["error"]["type"] == "rate_limit_error"
        assert low <= int(headers["retry-after"]) <= high, (headers["retry-after"], low, high)
        assert (headers["x-llmroute-limit"], headers["x-llmroute-limit-action"]) == (
            "global-usd", "rejected")
    assert up.call_count("big-up") == len(served)  # a refused request never reaches the upstream

    # Every request has ended (non-streaming requests settle before they answer): the counter holds
    # exactly the real spend, which both replicas report.
    spent = len(served) * BIG_COST
    assert sum(counters(prefix, "global-usd").values()) == nano(spent)
    for replica in (a, b):
        usage = budgets(replica)["global-usd"]
        assert Decimal(usage["used"]) == spent
        assert Decimal(usage["remaining"]) == Decimal(1) - spent

    stop_replicas([a, b])  # flushes both ledger writers
    entries = ledger_entries(ledger_url)
    assert len(entries) == 64
    ok = [e for e in entries if e.status == "ok"]
    assert {e.request_id for e in ok} == {h["x-llmroute-request-id"] for h, _ in served}
    assert all((e.model, e.input_tokens, e.output_tokens, e.cost_usd, e.usage_estimated)
               == ("fake/big", REAL_IN, REAL_OUT, BIG_COST, False) for e in ok)
    total = sum((e.cost_usd for e in ok if e.cost_usd is not None), Decimal(0))
    assert total == spent <= Decimal(1)
    assert nano(total) == sum(counters(prefix, "global-usd").values())
    errors = [e for e in entries if e.status == "error"]
    assert {e.request_id for e in errors} == {h["x-llmroute-request-id"] for _, h, _ in refused}
    assert all((e.http_status, e.error_code, e.cost_usd) == (429, "budget_exceeded", None)
               for e in errors)


# -- 2. a per-key rate limit shared by both replicas ----------------------------------------------
def test_rate_limit_counts_requests_on_both_replicas(
        up: FakeUpstream, config: Config, launch: Launch) -> None:
    limited = Key("rl", limits=({"window": "minute", "requests": 5},))
    other = Key("other")
    a, b = launch(config("a", keys=[limited, other]), config("b", keys=[limited, other]))
    clear_of_boundaries(["minute"], UTC_ZONE, margin_s=5)
    clients = {r.name: r.client(limited) for r in (a, b)}
    replicas = [a, b]

    for i in range(5):  # a, b, a, b, a
        raw = ask(clients[replicas[i % 2].name])
        assert raw.parse().model == "fake/big"
    before = datetime.now(UTC)
    refusals = []
    for replica in (b, a):
        with pytest.raises(openai.RateLimitError) as caught:
            ask(clients[replica.name])
        refusals.append(caught.value)
    after = datetime.now(UTC)

    end = next_boundary("minute", before, UTC_ZONE)
    low, high = retry_after_bounds(end, before, after)
    for exc in refusals:
        assert exc.code == "rate_limited"
        retry_after = int(exc.response.headers["retry-after"])
        assert 1 <= retry_after <= 60
        assert low <= retry_after <= high, (retry_after, low, high)
        retry_ms = int(exc.response.headers["retry-after-ms"])
        assert (end - after).total_seconds() * 1000 - 1 <= retry_ms
        assert retry_ms <= (end - before).total_seconds() * 1000 + 1
    assert up.call_count("big-up") == 5

    # The limit is the key's own: another key is served.
    with a.client(other) as client:
        assert ask(client).parse().model == "fake/big"
    usage = budgets(b, limited)["key:rl:minute:requests"]
    assert (usage["used"], usage["remaining"], usage["limit"]) == (5, 0, 5)
    assert datetime.fromisoformat(usage["resets_at"]) == end
    for client in clients.values():
        client.close()


# -- 3. a spend limit that downgrades ------------------------------------------------------------
def test_downgrade_serves_the_cheaper_policy_past_the_limit(
        up: FakeUpstream, config: Config, launch: Launch) -> None:
    # max_tokens 5, and the upstream answers 10 tokens anyway: a reservation is 17 * 0.001 +
    # 5 * 0.005 = $0.042 on fake/big (17 * 0.00001 + 5 * 0.00005 = $0.00042 on fake/small), below
    # the real $0.061 ($0.00061), so a settled request can take the counter past the limit.
    key = Key("dg", limits=({"window": "day", "usd": "0.05", "on_exceed": "downgrade",
                             "downgrade_to": "cheap"},))
    a, b = launch(config("a", keys=[key]), config("b", keys=[key]))
    clear_of_boundaries(["day"], UTC_ZONE, margin_s=10)

    # 1st: 0 + 0.042 <= 0.05 fits -> fake/big, settled at 0.061: the counter ends above the
    # limit by the real cost's excess over the reservation (0.019), no more.
    with a.client(key) as client:
        first = ask(client, max_tokens=5)
    assert first.parse().model == "fake/big"
    assert "x-llmroute-limit-action" not in first.headers
    # 2nd and 3rd: 0.061 + 0.042 > 0.05 -> the `cheap` policy (fake/small) serves them; they
    # count against the limit they passed (0.00061 each) without being refused by it, though
    # 0.061 + 0.00042 is over it too.
    for replica in (b, a):
        with replica.client(key) as client:
            raw = ask(client, max_tokens=5)
        assert raw.parse().model == "fake/small"
        assert raw.headers["x-llmroute-model"] == "fake/small"
        assert raw.headers["x-llmroute-limit-action"] == "downgraded"
        assert raw.headers["x-llmroute-limit"] == "key:dg:day:usd"
        assert raw.headers["x-llmroute-downgraded-to"] == "cheap"
        assert raw.headers["x-llmroute-policy"] == "cheap"
    assert [r.model for r in up.requests] == ["big-up", "small-up", "small-up"]

    used = BIG_COST + 2 * SMALL_COST
    assert used == Decimal("0.06222")
    for replica in (a, b):
        usage = budgets(replica, key)["key:dg:day:usd"]
        assert Decimal(usage["used"]) == used
        assert Decimal(usage["remaining"]) == 0


# -- 4. sticky experiment arms across replicas ---------------------------------------------------
def arm_by_hash(unit: str, weights: tuple[float, float]) -> str:
    """The arm of `unit` in experiment `router-ab`, computed here: SHA-256("router-ab:<unit>"),
    first 8 bytes over 2**64, against the cumulative weights of arms a, b."""
    digest = hashlib.sha256(f"router-ab:{unit}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64 * sum(weights)
    return "a" if point < weights[0] else "b"


def experiment(weight_b: float) -> list[dict[str, Any]]:
    return [{"name": "router-ab", "control": "a", "sticky_by": "user",
             "arms": {"a": {"policy": "default"}, "b": {"policy": "mid", "weight": weight_b},
                      "s": {"policy": "cheap", "shadow": True}}}]


def test_experiment_arms_are_sticky_across_replicas(
        up: FakeUpstream, config: Config, launch: Launch, prefix: str, ledger_url: str) -> None:
    # Replica b runs a later weight (b: 3): a user keeps the arm first stored for it, wherever.
    a, b = launch(config("a", experiments=experiment(1), ledger_url=ledger_url),
                  config("b", experiments=experiment(3), ledger_url=ledger_url))
    users = [f"user-{i:02d}" for i in range(20)]
    first_on = {u: (a if i < 10 else b) for i, u in enumerate(users)}
    expected = {u: arm_by_hash(u, (1, 1) if first_on[u] is a else (1, 3)) for u in users}
    # With these names both arms are used, and the two weightings disagree on some users first
    # seen on either replica (so the test sees stickiness, not just the same hash twice).
    assert set(expected.values()) == {"a", "b"}
    moved = [u for u in users if arm_by_hash(u, (1, 1)) != arm_by_hash(u, (1, 3))]
    assert any(first_on[u] is a for u in moved) and any(first_on[u] is b for u in moved)

    clients = {r.name: r.client() for r in (a, b)}
    served: dict[str, str] = {}
    for user in users:
        first = first_on[user]
        for replica in (first, b if first is a else a):
            raw = ask(clients[replica.name], user=user)
            arm = expected[user]
            assert raw.headers["x-llmroute-experiment"] == f"router-ab:{arm}", (user, replica.name)
            assert raw.parse().model == ("fake/big" if arm == "a" else "fake/mid")
            served[raw.headers["x-llmroute-request-id"]] = arm
        assert stored_value(prefix, f"exp:router-ab:{user}") == expected[user]
    # Not in the experiment: a concrete model, or no unit (no user) to stick to.
    raw = ask(clients[a.name], model="fake/mid", user="user-00")
    assert "x-llmroute-experiment" not in raw.headers
    raw = ask(clients[b.name])
    assert "x-llmroute-experiment" not in raw.headers and raw.parse().model == "fake/big"
    for client in clients.values():
        client.close()

    entries = {e.request_id: e for e in wait_for_ledger(ledger_url, 42)}
    assert len(entries) == 42
    for request_id, arm in served.items():
        entry = entries[request_id]
        assert entry.experiment_arm == f"router-ab:{arm}"
        assert entry.model == ("fake/big" if arm == "a" else "fake/mid")
        assert entry.shadow is not None
        shadow = json.loads(entry.shadow)
        # The shadow arm's decision (policy cheap -> fake/small), estimated on the prompt's 17
        # tokens and min(expected 256, max_tokens 20) output tokens; never called.
        assert len(shadow) == 1
        assert Decimal(shadow[0].pop("estimated_cost_usd")) == cost("fake/small", EST_IN, EST_OUT)
        # rules score no model: the learned router's P(good) of the shadow's choice is logged
        quality = shadow[0].pop("predicted_quality")
        assert isinstance(quality, float) and 0 < quality < 1
        assert shadow[0] == {"experiment": "router-ab", "arm": "s", "policy": "cheap",
                             "model": "fake/small", "tier": "simple"}
    assert up.call_count("small-up") == 0
    others = [e for rid, e in entries.items() if rid not in served]
    assert [(e.experiment_arm, e.shadow) for e in others] == [(None, None), (None, None)]


# -- 5. an upstream that reports no usage --------------------------------------------------------
def test_usage_is_counted_when_the_upstream_reports_none(
        up: FakeUpstream, config: Config, launch: Launch, prefix: str, ledger_url: str) -> None:
    key = Key("meter", limits=({"window": "day", "usd": "10"},))
    (a,) = launch(config("a", keys=[key], ledger_url=ledger_url))
    clear_of_boundaries(["day"], UTC_ZONE, margin_s=15)
    text = "one two three four five six seven eight"  # 39 characters: ceil(39 / 4) = 10 tokens
    up.set_default("small-up", Ok(text=text, usage=False))
    counted = cost("fake/small", EST_IN, 10)  # the gateway's own count: 17 in (its estimate), 10 out
    assert counted == Decimal("0.00067")
    client = a.client(key)

    raw = client.chat.completions.with_raw_response.create(
        model="auto/cheap", messages=PROMPT, max_tokens=MAX_TOKENS,
        stream=True, stream_options={"include_usage": True})
    chunks = list(raw.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) \
        == (EST_IN, 10, EST_IN + 10)
    assert last.usage.model_extra == {"estimated": True, "cost": float(counted)}
    assert sum(c.usage is not None for c in chunks) == 1
    # The gateway asked the upstream for usage; the upstream sent none.
    assert up.requests[-1].body is not None
    assert up.requests[-1].body["stream_options"] == {"include_usage": True}
    streamed_id = raw.headers["x-llmroute-request-id"]

    plain = ask(client, model="auto/cheap").parse()
    assert plain.usage.model_extra == {"estimated": True, "cost": float(counted)}
    assert (plain.usage.prompt_tokens, plain.usage.completion_tokens) == (EST_IN, 10)
    assert sum(counters(prefix, "key:meter:day:usd").values()) == nano(2 * counted)

    # A stream the client abandons after 3 words is charged for what was produced until then.
    words = [f"w{i}" for i in range(30)]
    answer = f"echo from small-up: {' '.join(words)}"  # the fake's answer, one piece per word
    pieces = [w + " " for w in answer.split(" ")[:-1]] + [answer.split(" ")[-1]]
    up.script("small-up", SlowStream(chunk_delay_s=0.1))
    prompt = [{"role": "user", "content": " ".join(words)}]
    abandoned_in = math.ceil(len(prompt[0]["content"]) / 4) + 4 + 3
    raw = client.chat.completions.with_raw_response.create(
        model="auto/cheap", messages=prompt, max_tokens=MAX_TOKENS,
        stream=True, stream_options={"include_usage": True})
    stream = raw.parse()
    seen: list[str] = []
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            seen.append(chunk.choices[0].delta.content)
        if len(seen) == 3:
            break
    stream.close()
    assert seen == pieces[:3]
    abandoned_id = raw.headers["x-llmroute-request-id"]
    client.close()

    entries = {e.request_id: e for e in wait_for_ledger(ledger_url, 3)}
    streamed = entries[streamed_id]
    assert (streamed.status, streamed.stream, streamed.usage_estimated) == ("ok", True, True)
    assert (streamed.input_tokens, streamed.output_tokens, streamed.cost_usd) \
        == (EST_IN, 10, counted)
    left = entries[abandoned_id]
    assert (left.status, left.http_status, left.error_code) == ("error", 499,
                                                                "client_closed_request")
    assert left.stream and left.usage_estimated and left.input_tokens == abandoned_in
    # What the gateway relayed: at least the 3 words the client read, not the whole answer.
    possible = {math.ceil(len("".join(pieces[:n])) / 4) for n in range(3, len(pieces))}
    assert left.output_tokens in possible, left.output_tokens
    assert left.cost_usd == cost("fake/small", abandoned_in, left.output_tokens)
    total = 2 * counted + left.cost_usd
    assert wait_until(lambda: sum(counters(prefix, "key:meter:day:usd").values()) == nano(total)), \
        counters(prefix, "key:meter:day:usd")
    assert Decimal(budgets(a, key)["key:meter:day:usd"]["used"]) == total


# -- 6. Redis goes away and comes back -----------------------------------------------------------
def test_redis_outage_fails_open_for_routing_and_closed_for_budgets(
        up: FakeUpstream, config: Config, launch: Launch, prefix: str) -> None:
    paid = Key("paid", limits=({"window": "day", "usd": "10"},))
    free = Key("free", limits=({"window": "minute", "requests": 1000},))
    proxy = ProxyThread().start()
    try:
        state = {"url": proxy.url, "prefix": prefix, "timeout_s": 0.3}
        closed, open_ = launch(
            config("closed", keys=[paid, free], state=state),
            config("open", keys=[paid, free], state={**state, "budgets_when_down": "open"}))
        clear_of_boundaries(["day"], UTC_ZONE, margin_s=20)
        with closed.client(paid) as client:
            assert ask(client).headers.get("x-llmroute-limits") is None
        for replica in (closed, open_):
            response = ready(replica)
            assert response.status_code == 200
            assert response.json()["state"] == {"kind": "redis", "reachable": True}

        proxy.cut()
        for replica in (closed, open_):
            response = ready(replica)
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "ready"
            assert response.json()["state"] == {"kind": "redis", "reachable": False}
            with replica.client(free) as client:  # no hard budget: served, uncounted
                raw = ask(client)
            assert raw.parse().model == "fake/big"
            assert raw.headers["x-llmroute-limits"] == "unchecked"
        with closed.client(paid) as client, pytest.raises(openai.InternalServerError) as caught:
            ask(client)
        assert caught.value.status_code == 503
        assert caught.value.code == "limits_unavailable"
        assert caught.value.response.headers["retry-after"] == "1"
        with open_.client(paid) as client:  # budgets_when_down: open
            raw = ask(client)
        assert raw.parse().model == "fake/big"
        assert raw.headers["x-llmroute-limits"] == "unchecked"
        assert up.call_count("big-up") == 4
        with closed.http(paid) as http:  # the counters cannot be read: a 503 to retry, not a 500
            response = http.get("/v1/budgets")
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "limits_unavailable"
        assert response.headers["retry-after"] == "1"

        proxy.restore()
        for replica in (closed, open_):
            assert wait_until(lambda r=replica: ready(r).json()["state"]["reachable"], 5.0)
        # Counting resumes: the request before the outage counted, those during it did not.
        assert Decimal(budgets(closed, paid)["key:paid:day:usd"]["used"]) == BIG_COST
        for n, replica in enumerate((closed, open_), start=2):
            with replica.client(paid) as client:
                raw = ask(client)
            assert "x-llmroute-limits" not in raw.headers
            for other in (closed, open_):
                assert Decimal(budgets(other, paid)["key:paid:day:usd"]["used"]) == n * BIG_COST
        assert sum(counters(prefix, "key:paid:day:usd").values()) == nano(3 * BIG_COST)
    finally:
        proxy.close()


# -- 7. GET /v1/budgets ---------------------------------------------------------------------------
def test_budgets_endpoint_reports_use_remaining_and_reset(
        up: FakeUpstream, config: Config, launch: Launch) -> None:
    zone = ZoneInfo("Asia/Kolkata")  # UTC+05:30: local hours and days start at :30 UTC
    acct = Key("acct", team="research", limits=({"window": "day", "usd": "1"},
                                                 {"window": "hour", "requests": 100}))
    other = Key("other")
    limits = [
        {"name": "team-month", "scope": "team", "window": "month", "usd": "5"},
        {"name": "all-tokens", "scope": "global", "window": "week", "tokens": 1_000_000},
        {"name": "per-user", "scope": "user", "window": "day", "requests": 50, "hard": False},
    ]
    options = {"keys": [acct, other], "limits": limits, "control": {"timezone": "Asia/Kolkata"}}
    a, b = launch(config("a", **options), config("b", **options))
    clear_of_boundaries(["hour", "day", "week", "month"], zone, margin_s=10)

    for replica in (a, b, a):
        with replica.client(acct) as client:
            ask(client, extra_headers={"x-llmroute-user": "alice"})
    with b.client(other) as client:
        ask(client, user="bob")
    now = datetime.now(UTC)
    spent = 3 * BIG_COST  # 0.183
    tokens = 4 * (REAL_IN + REAL_OUT)  # every request counts in the global token limit

    def expect(name: str, scope: str, subject: str, unit: str, window: str, limit: Any,
               used: Any, hard: bool = True) -> dict[str, Any]:
        return {"name": name, "scope": scope, "subject": subject, "unit": unit, "window": window,
                "hard": hard, "limit": limit, "used": used, "remaining": limit - used,
                "resets_at": next_boundary(window, now, zone)}

    want = {
        "team-month": expect("team-month", "team", "research", "usd", "month", Decimal(5), spent),
        "all-tokens": expect("all-tokens", "global", "*", "tokens", "week", 1_000_000, tokens),
        "per-user": expect("per-user", "user", "alice", "requests", "day", 50, 3, hard=False),
        "key:acct:day:usd": expect("key:acct:day:usd", "key", "acct", "usd", "day", Decimal(1),
                                   spent),
        "key:acct:hour:requests": expect("key:acct:hour:requests", "key", "acct", "requests",
                                         "hour", 100, 3),
    }

    def parsed(view: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        out = {}
        for name, item in view.items():
            item = dict(item)
            if item["unit"] == "usd":
                for field in ("limit", "used", "remaining"):
                    assert isinstance(item[field], str)  # money as exact USD strings
                    item[field] = Decimal(item[field])
            item["resets_at"] = datetime.fromisoformat(item["resets_at"])
            out[name] = item
        return out

    for replica in (a, b):  # both replicas read the same shared counters
        assert parsed(budgets(replica, acct, user="alice")) == want
    assert set(budgets(a, acct)) == set(want) - {"per-user"}  # no user header: no user limits
    view = parsed(budgets(a, other, user="bob"))
    assert view == {"all-tokens": want["all-tokens"],
                    "per-user": {**want["per-user"], "subject": "bob", "used": 1,
                                 "remaining": 49}}
    assert datetime.fromisoformat(budgets(a, acct)["key:acct:hour:requests"]["resets_at"]).minute \
        == 30


# -- 8. alerts from two replicas -------------------------------------------------------------------
class Webhook:
    """A local webhook receiver (stdlib HTTP server in a thread): keeps every JSON body posted."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_alerts_from_two_replicas_reach_the_webhook_once(
        up: FakeUpstream, config: Config, launch: Launch, ledger_url: str) -> None:
    hook = Webhook()
    try:
        limits = [{"name": "global-usd", "window": "day", "usd": "1", "alert_at": [0.5]}]
        alerts = {"interval_s": 1, "default_rules": False,
                  "webhooks": [{"url": hook.url, "format": "json"}],
                  "rules": [{"name": "limits", "kind": "limit"}]}
        a, b = launch(config("a", ledger_url=ledger_url, limits=limits, alerts=alerts),
                      config("b", ledger_url=ledger_url, limits=limits, alerts=alerts))
        clear_of_boundaries(["day"], UTC_ZONE, margin_s=30)
        # 9 × $0.061 = $0.549: past 50% of the $1 budget, spread over both replicas
        for n in range(9):
            with (a if n % 2 else b).client() as client:
                ask(client)
        assert wait_until(lambda: len(hook.received) >= 1, timeout_s=15)
        wait_until(lambda: len(hook.received) > 1, timeout_s=3.5)  # more rounds of both replicas
        assert len(hook.received) == 1, hook.received
        [alert] = hook.received
        assert (alert["rule"], alert["kind"], alert["subject"]) == ("limits", "limit", "global-usd")
        assert alert["data"]["share"] == 0.5 and alert["severity"] == "warning"
        assert Decimal(alert["data"]["used"]) == 9 * BIG_COST
        # kept in the history, once
        listed = subprocess_json(["alerts", "list", "--json", "-c", str(a.tmp_path / f"{a.name}.yaml")])
        assert [(x["rule"], x["delivered"]) for x in listed] == [("limits", True)]
    finally:
        hook.close()


def subprocess_json(args: list[str]) -> Any:
    """Run `llmroute ARGS` and parse its JSON output."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "llmroute", *args], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
