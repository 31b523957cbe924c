"""Alerts: each rule on crafted data (fires above its threshold, not at or below it); delivery to a
real local webhook server (generic and Slack bodies, headers from env, retries with backoff, no
secrets in logs); the evaluator (dedup within a window, one leader among evaluators sharing one
Redis, the ledger's hour slices, history); the history on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from pydantic import ValidationError

from control.alert_helpers import (
    POSTGRES_DSN,
    REDIS_URL,
    WebhookServer,
    drop_schema,
    entry,
    postgres_error,
)
from helpers import load_yaml
from llmroute.breakers import Cooldowns
from llmroute.control.alert_delivery import Delivery, slack_body
from llmroute.control.alert_evaluator import AlertEvaluator, breaker_cooldowns
from llmroute.control.alert_store import list_alerts, recent_alerts, record_alert
from llmroute.control.alert_tallies import Tally, is_error, tally
from llmroute.control.alerts import (
    Alert,
    cooldown_alerts,
    limit_alerts,
    limit_subjects,
    quality_alerts,
    rate_alerts,
    spend_anomaly_alerts,
    trailing_average,
)
from llmroute.control.alerts_config import (
    AlertsConfig,
    CooldownRule,
    DeliveryRetry,
    ErrorRateRule,
    FallbackRateRule,
    LimitRule,
    QualityRule,
    SpendAnomalyRule,
    WebhookConfig,
)
from llmroute.control.limits import Amount, Limit, Limiter, Subject, usd_units
from llmroute.control.state_memory import MemoryState
from llmroute.control.state_redis import RedisState
from llmroute.ledger import LedgerEntry, SQLiteStore, Store
from llmroute.ledger.postgres import PostgresStore
from llmroute.ledger.reads import open_reads
from llmroute.settings import Allowance
from llmroute.testing.redis_tools import drop_prefix, redis_unreachable

NOW = datetime(2025, 3, 10, 12, 30, tzinfo=UTC)
D = Decimal


@pytest_asyncio.fixture
async def hook() -> AsyncIterator[WebhookServer]:
    server = await WebhookServer().start()
    yield server
    await server.aclose()


def config(*hooks: WebhookConfig, **changes: object) -> AlertsConfig:
    fields: dict[str, object] = {"webhooks": hooks, "default_rules": False,
                                 "retry": DeliveryRetry(attempts=3, backoff_s=0.0)}
    fields.update(changes)
    return AlertsConfig.model_validate(fields)


def sample(rule: str = "r", key: str = "k") -> Alert:
    return Alert(rule, "error_rate", "critical", "*", "error rate 50%", {"share": 0.5}, NOW, key)


# -- rules ---------------------------------------------------------------------------------------
def test_error_rate_fires_above_threshold_with_enough_requests() -> None:
    rule = ErrorRateRule(name="err", threshold=0.2, min_requests=20)
    ok = [entry(i, NOW) for i in range(15)]
    bad = [entry(100 + i, NOW, status="error", http=502, tried=[("m/a", "server")]) for i in range(5)]
    # not errors: a client's bad request, a budget refused before any attempt
    client = [entry(200, NOW, status="error", http=400, tried=[]),
              entry(201, NOW, status="error", http=429, tried=[])]
    alerts = rate_alerts(rule, tally(ok + bad + client, "global"), NOW)  # 5 of 22 = 22.7%
    assert [(a.subject, a.data["count"], a.data["requests"]) for a in alerts] == [("*", 5, 22)]
    assert "error rate 23% over the last 5 min for all traffic" in alerts[0].message
    assert alerts[0].dedup_key == f"alert:err:*:{int(NOW.timestamp() // 300)}"
    exactly = [*ok, entry(300, NOW), *bad[:4]]  # 4 of 20 = 20%: not above
    assert rate_alerts(rule, tally(exactly, "global"), NOW) == []
    assert rate_alerts(rule, tally(ok[:10] + bad, "global"), NOW) == []  # 15 < min_requests
    assert is_error(entry(1, NOW, status="error", http=429, tried=[("m/a", "rate_limit")]))


def test_error_rate_by_model_counts_failures_for_the_first_model_tried() -> None:
    rule = ErrorRateRule(name="err", threshold=0.5, min_requests=2, by="model")
    entries = [entry(1, NOW, model="m/b"), entry(2, NOW, model="m/b"),
               entry(3, NOW, status="error", http=502, tried=[("m/a", "server"), ("m/b", "server")]),
               entry(4, NOW, status="error", http=504, tried=[("m/a", "timeout")])]
    alerts = rate_alerts(rule, tally(entries, "model"), NOW)
    assert [a.subject for a in alerts] == ["model:m/a"]


def test_fallback_rate_counts_answers_by_another_model_than_the_first_tried() -> None:
    rule = FallbackRateRule(name="fb", threshold=0.25, min_requests=4)
    fell = [entry(i, NOW, model="m/b", tried=[("m/a", "server"), ("m/b", None)]) for i in range(3)]
    # the first model skipped (in cooldown) is not a fallback: m/b was the first one tried
    skip = entry(9, NOW, model="m/b", tried=[("m/a", "cooldown"), ("m/b", None)])
    skip = replace(skip, attempts=(replace(skip.attempts[0], skipped=True), skip.attempts[1]))
    plain = [entry(10 + i, NOW) for i in range(5)]
    t = tally([*fell[:2], skip, *plain], "global")
    assert (t["*"].fallbacks, t["*"].upstream) == (2, 8)
    assert rate_alerts(rule, t, NOW) == []  # 2 of 8: exactly 25%, not above
    [alert] = rate_alerts(rule, tally([*fell, skip, *plain], "global"), NOW)  # 3 of 9
    assert (alert.data["count"], alert.data["requests"]) == (3, 9)
    assert alert.message.startswith("fallback rate 33% over the last 5 min")


def test_quality_fires_per_policy_below_threshold() -> None:
    rule = QualityRule(name="q", threshold=3.5, min_samples=3)
    entries = [entry(1, NOW, policy="auto", rating=2), entry(2, NOW, policy="auto", rating=3),
               entry(3, NOW, policy="auto", rating=4), entry(4, NOW, policy="auto"),
               entry(5, NOW, policy="cheap", rating=4), entry(6, NOW, policy="cheap", rating=3),
               entry(7, NOW, policy="cheap", rating=4), entry(8, NOW, policy=None, rating=1)]
    alerts = quality_alerts(rule, tally(entries, "policy"), NOW)
    assert [(a.subject, a.data["value"], a.data["samples"]) for a in alerts] == [("policy:auto", 3.0, 3)]
    assert "mean rating 3.00" in alerts[0].message
    only_cheap = rule.model_copy(update={"policy": "cheap"})
    assert quality_alerts(only_cheap, tally(entries, "policy"), NOW) == []  # 11/3 = 3.67 >= 3.5
    success = QualityRule(name="s", metric="success", threshold=0.8, min_samples=2)
    judged = [entry(i, NOW, success=i < 3) for i in range(5)]  # 3 of 5 = 60%
    assert [a.data["value"] for a in quality_alerts(success, tally(judged, "policy"), NOW)] == [0.6]
    with pytest.raises(ValidationError):
        QualityRule(name="s", metric="success", threshold=3)


def test_spend_anomaly_hand_computed() -> None:
    rule = SpendAnomalyRule(name="spend", factor=3, days=4, min_usd=D("1"))
    # previous days: $2, $3, no traffic (left out of the average), $4 -> average $3; 3 x $3 = $9
    past = [{"*": D("2")}, {"*": D("3")}, {}, {"*": D("4")}]
    assert trailing_average([D("2"), D("3"), None, D("4")]) == D("3")
    fired = spend_anomaly_alerts(rule, {"*": D("10")}, past, NOW)
    assert len(fired) == 1
    assert fired[0].data == {"last_hour_usd": "10", "baseline_usd": "3", "days": 3, "ratio": 3.3333,
                             "factor": 3.0}
    assert "$10.00 for all traffic is 3.3× the same hour's average over the previous 3 day(s) " \
           "($3.00)" in fired[0].message
    assert spend_anomaly_alerts(rule, {"*": D("9")}, past, NOW) == []  # exactly 3x: not above
    assert spend_anomaly_alerts(rule, {"*": D("0.5")}, [{"*": D("0.1")}], NOW) == []  # < min_usd
    assert spend_anomaly_alerts(rule, {"*": D("50")}, [{}, {}], NOW) == []  # no history


def test_cooldown_alert_per_model_and_filter() -> None:
    rule = CooldownRule(name="cd", models=("openai/*",))
    alerts = cooldown_alerts(rule, {"openai/gpt-4o": 42.4, "anthropic/x": 10.0}, NOW)
    assert [(a.subject, a.data["seconds_left"]) for a in alerts] == [("model:openai/gpt-4o", 42.4)]
    assert "'openai/gpt-4o' is in cooldown" in alerts[0].message
    assert alerts[0].dedup_ttl_s == 3600


def _usage_limit(alert_at: tuple[float, ...] = (0.5, 0.8, 1.0)) -> Limit:
    return Limit("daily", "key", None, Allowance(window="day", usd=D("10"), alert_at=alert_at))


@pytest.mark.asyncio
async def test_limit_alert_names_the_highest_share_crossed() -> None:
    state = MemoryState()
    limiter = Limiter([_usage_limit()], state, ZoneInfo("UTC"), clock=lambda: NOW)
    rule = LimitRule(name="limits")
    assert limit_alerts(rule, await limiter.usage(Subject(key="k1")), NOW) == []
    await limiter.admit(Subject(key="k1"), Amount(usd=usd_units(D("4.99"))))
    assert limit_alerts(rule, await limiter.usage(Subject(key="k1")), NOW) == []  # below 50%
    await limiter.admit(Subject(key="k1"), Amount(usd=usd_units(D("3.6"))))  # $8.59: 80% crossed
    [alert] = limit_alerts(rule, await limiter.usage(Subject(key="k1")), NOW)
    assert (alert.subject, alert.severity, alert.data["share"]) == ("daily:k1", "warning", 0.8)
    assert alert.message == "limit 'daily' (key k1) at 80%: $8.59 of $10.00 used this day"
    assert alert.dedup_ttl_s == pytest.approx(11.5 * 3600 + 60)
    await limiter.admit(Subject(key="k1"), Amount(usd=usd_units(D("1.41"))))  # exactly $10
    [full] = limit_alerts(rule, await limiter.usage(Subject(key="k1")), NOW)
    assert (full.severity, full.data["share"]) == ("critical", 1.0)
    assert "refused or downgraded" in full.message and full.dedup_key != alert.dedup_key
    assert limit_alerts(LimitRule(name="l", limits=("monthly*",)),
                        await limiter.usage(Subject(key="k1")), NOW) == []


def test_config_defaults_and_overrides() -> None:
    default = AlertsConfig()
    assert [r.kind for r in default.active_rules] == ["limit", "spend_anomaly", "error_rate", "cooldown"]
    off = AlertsConfig.model_validate({"rules": [{"name": "error-rate", "kind": "error_rate",
                                                  "threshold": 0.5, "enabled": False},
                                                 {"name": "fb", "kind": "fallback_rate",
                                                  "threshold": 0.3}]})
    assert [r.name for r in off.active_rules] == ["limits", "spend-anomaly", "cooldown", "fb"]
    with pytest.raises(ValidationError, match="unique"):
        AlertsConfig.model_validate({"rules": [{"name": "a", "kind": "cooldown"}] * 2})
    with pytest.raises(ValidationError):
        AlertsConfig.model_validate({"rules": [{"name": "a", "kind": "cooldown", "threshold": 1}]})
    with pytest.raises(ValidationError, match="exactly one"):
        WebhookConfig()


# -- delivery ------------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_generic_and_slack_bodies_reach_the_webhook(hook: WebhookServer,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTS_TEST_TOKEN", "Bearer s3cret")
    cfg = config(WebhookConfig(url=f"{hook.url}/generic", headers_env={"Authorization": "ALERTS_TEST_TOKEN"}),
                 WebhookConfig(url=f"{hook.url}/slack", format="slack"))
    delivery = Delivery(cfg)
    alert = sample()
    try:
        receipt = await delivery.deliver(alert)
    finally:
        await delivery.aclose()
    assert receipt.delivered and receipt.outcomes[0].target == "log"
    got = {r.path: r for r in hook.received}
    generic = got["/generic"]
    assert generic.headers["Authorization"] == "Bearer s3cret"
    assert generic.body == {"source": "llmroute", "id": alert.id, "rule": "r", "kind": "error_rate",
                            "severity": "critical", "subject": "*", "message": "error rate 50%",
                            "data": {"share": 0.5}, "ts": "2025-03-10T12:30:00+00:00",
                            "dedup_key": "k"}
    slack = got["/slack"].body
    assert slack == slack_body(alert) and "Authorization" not in got["/slack"].headers
    assert slack["text"] == ":rotating_light: [critical] r: error rate 50%"
    assert slack["blocks"][0]["text"]["text"] == "*CRITICAL* · `r` · *\nerror rate 50%"


@pytest.mark.asyncio
async def test_retries_with_backoff_until_the_webhook_takes_it(hook: WebhookServer) -> None:
    hook.failures = [500, 503]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    cfg = config(WebhookConfig(url=hook.url), retry=DeliveryRetry(attempts=4, backoff_s=0.5))
    delivery = Delivery(cfg, sleep=sleep)
    try:
        receipt = await delivery.deliver(sample())
        assert receipt.delivered and receipt.outcomes[-1].tries == 3
        assert waits == [0.5, 1.0] and hook.hits == 3 and len(hook.received) == 1
        hook.failures, hook.retry_after = [429], "7"  # a longer Retry-After is honoured
        await delivery.deliver(sample())
        assert waits[-1] == 7.0
        hook.failures = [400]  # a client error is not retried
        failed = await delivery.deliver(sample())
        assert not failed.delivered and failed.outcomes[-1].tries == 1
        assert failed.outcomes[-1].error == "HTTP 400"
    finally:
        await delivery.aclose()


@pytest.mark.asyncio
async def test_failures_never_log_the_webhook_url_or_headers(
        hook: WebhookServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTS_TEST_TOKEN", "tok-XYZ")
    hook.failures = [500] * 3
    cfg = config(WebhookConfig(url=f"{hook.url}/services/T0/SECRETPATH?token=QSECRET",
                               headers_env={"X-Token": "ALERTS_TEST_TOKEN"}),
                 WebhookConfig(url="http://127.0.0.1:9/hooks/SECRET2"),
                 WebhookConfig(url_env="ALERTS_TEST_UNSET_URL"))
    delivery = Delivery(cfg)
    with caplog.at_level(logging.INFO, logger="llmroute.alerts"):
        receipt = await delivery.deliver(sample())
    await delivery.aclose()
    assert [o.ok for o in receipt.outcomes] == [True, False, False, False]
    assert receipt.outcomes[1].target == f"json webhook {hook.url}"
    assert receipt.outcomes[3].error == "env var(s) not set: ALERTS_TEST_UNSET_URL"
    shown = caplog.text + " ".join(str(o) for o in receipt.outcomes)
    for secret in ("SECRETPATH", "QSECRET", "SECRET2", "tok-XYZ"):
        assert secret not in shown
    assert "alert [critical] r (*): error rate 50%" in caplog.text


# -- the evaluator -------------------------------------------------------------------------------
async def _ledger(tmp_path: Path, entries: list[LedgerEntry]) -> SQLiteStore:
    store = SQLiteStore(tmp_path / "ledger.db")
    await store.migrate()
    await store.write(entries)
    return store


@pytest.mark.asyncio
@pytest.mark.parametrize("where", ["inline", "process"])
async def test_evaluating_twice_in_a_window_sends_once_and_keeps_history(
        hook: WebhookServer, tmp_path: Path, where: str) -> None:
    """Also with the ledger read in the gateway's reader process (each round sees new rows)."""
    bad = [entry(i, NOW - timedelta(minutes=1), status="error", http=502, tried=[("m/a", "server")])
           for i in range(4)]
    store = await _ledger(tmp_path, bad)
    reads = open_reads(f"sqlite:///{tmp_path / 'ledger.db'}", where, store)
    rules = [ErrorRateRule(name="err", threshold=0.5, min_requests=4), CooldownRule(name="cd")]
    state = MemoryState()
    await state.open_cooldown("m/a", 120)
    clock = [NOW]
    ev = AlertEvaluator(config(WebhookConfig(url=hook.url), rules=rules), state, store=store,
                        clock=lambda: clock[0], reads=reads)
    try:
        first = await ev.run_once()
        assert sorted(r.alert.rule for r in first) == ["cd", "err"]
        assert await ev.run_once() == []
        clock[0] = NOW + timedelta(seconds=1)
        assert await ev.run_once() == []
        assert sorted(r.body["rule"] for r in hook.received) == ["cd", "err"]
        clock[0] = NOW + timedelta(minutes=5)  # the next 5-minute window: the error rate again
        await store.write([entry(50 + i, clock[0] - timedelta(seconds=5), status="error", http=503,
                                 tried=[("m/a", "overloaded")]) for i in range(4)])
        assert [r.alert.rule for r in await ev.run_once()] == ["err"]
        history = await list_alerts(store)  # newest first
        assert (history[0].alert.rule, history[0].alert.ts) == ("err", clock[0])
        assert sorted(r.alert.rule for r in history[1:]) == ["cd", "err"]
        assert all(r.delivered for r in history)
    finally:
        await ev.aclose()
        await reads.aclose()
        await store.close()


@pytest.mark.asyncio
async def test_spend_anomaly_reads_only_the_same_hour_slices(hook: WebhookServer, tmp_path: Path) -> None:
    hour_ago = NOW - timedelta(minutes=30)
    entries = [entry(1, hour_ago, cost="6"), entry(2, hour_ago, cost="4"),           # last hour: $10
               entry(3, hour_ago - timedelta(days=1), cost="2"),                     # day 1: $2
               entry(4, hour_ago - timedelta(days=2), cost="4"),                     # day 2: $4
               entry(5, NOW - timedelta(days=1, minutes=-40), cost="100"),           # outside slices
               entry(6, NOW - timedelta(days=2, hours=2), cost="100")]
    store = await _ledger(tmp_path, entries)
    rule = SpendAnomalyRule(name="spend", days=3)
    ev = AlertEvaluator(config(WebhookConfig(url=hook.url), rules=[rule]), MemoryState(), store=store,
                        clock=lambda: NOW)
    try:
        [receipt] = await ev.run_once()
        assert receipt.alert.data["baseline_usd"] == "3" and receipt.alert.data["days"] == 2
        assert hook.received[0].body["data"]["ratio"] == 3.3333
        looser = AlertEvaluator(config(rules=[rule.model_copy(update={"factor": 3.5})]), MemoryState(),
                                store=store, clock=lambda: NOW)
        assert await looser.evaluate() == []
    finally:
        await ev.aclose()
        await store.close()


@pytest.mark.asyncio
async def test_undelivered_alerts_are_kept_as_such(hook: WebhookServer, tmp_path: Path) -> None:
    hook.failures = [500] * 5
    store = await _ledger(tmp_path, [])
    state = MemoryState()
    await state.open_cooldown("m/z", 60)
    ev = AlertEvaluator(config(WebhookConfig(url=hook.url), rules=[CooldownRule(name="cd")]), state,
                        store=store, clock=lambda: NOW)
    try:
        [receipt] = await ev.run_once()
        assert not receipt.delivered and receipt.outcomes[-1].tries == 3
        assert [r.delivered for r in await list_alerts(store)] == [False]
    finally:
        await ev.aclose()
        await store.close()


@pytest.mark.asyncio
async def test_background_task_delivers_and_stops(hook: WebhookServer) -> None:
    state = MemoryState()
    await state.open_cooldown("m/a", 60)
    ev = AlertEvaluator(config(WebhookConfig(url=hook.url), rules=[CooldownRule(name="cd")],
                               interval_s=1), state)
    ev.start()
    try:
        for _ in range(200):
            if hook.received:
                break
            await asyncio.sleep(0.01)
        assert [r.body["subject"] for r in hook.received] == ["model:m/a"]
    finally:
        await ev.aclose()
    assert ev._task is None


class CountingEvaluator(AlertEvaluator):
    evaluations = 0

    async def evaluate(self) -> list[Alert]:
        self.evaluations += 1
        return await super().evaluate()


@pytest.mark.asyncio
async def test_two_evaluators_on_one_redis_one_leads_and_alerts_go_out_once(hook: WebhookServer) -> None:
    why = redis_unreachable(REDIS_URL)
    if why is not None:
        pytest.skip(why)
    prefix = f"llmroute-test:{uuid.uuid4().hex}:"
    states = [RedisState(REDIS_URL, prefix=prefix) for _ in range(2)]
    await states[0].open_cooldown("m/a", 300)
    cfg = config(WebhookConfig(url=hook.url), rules=[CooldownRule(name="cd")], interval_s=1)
    evs = [CountingEvaluator(cfg, s, holder=f"replica-{i}", clock=lambda: NOW)
           for i, s in enumerate(states)]
    try:
        results = await asyncio.gather(*(ev.run_once() for ev in evs))
        assert sorted(len(r) for r in results) == [0, 1]
        assert sorted(ev.evaluations for ev in evs) == [0, 1]
        leader, other = (evs[0], evs[1]) if evs[0].evaluations else (evs[1], evs[0])
        assert await other.run_once() == [] and other.evaluations == 0  # the lease is held
        assert await leader.run_once() == [] and leader.evaluations == 2  # renewed; deduped
        await asyncio.sleep(2.6)  # the leader stops renewing: the lease (2.5 intervals) lapses
        assert await other.run_once() == [] and other.evaluations == 1  # took over; already sent
        assert len(hook.received) == 1
    finally:
        for ev in evs:
            await ev.aclose()
        for s in states:
            await s.aclose()
        drop_prefix(prefix, REDIS_URL)


# -- history -------------------------------------------------------------------------------------
@pytest_asyncio.fixture(params=["sqlite", "postgres"])
async def history_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    store: Store
    schema = f"llmroute_test_alerts_{uuid.uuid4().hex[:10]}"
    if request.param == "sqlite":
        store = SQLiteStore(tmp_path / "ledger.db")
    else:
        why = await postgres_error()
        if why is not None:
            pytest.skip(why)
        store = PostgresStore(POSTGRES_DSN, schema=schema, max_size=2)
    await store.migrate()
    yield store
    await store.close()
    if request.param == "postgres":
        await drop_schema(schema)


@pytest.mark.asyncio
async def test_history_round_trip(history_store: Store) -> None:
    older = Alert("limits", "limit", "warning", "daily:k1", "limit 'daily' at 80% — ünïcode",
                  {"share": 0.8, "used": "8.5", "nested": {"a": [1, 2]}}, NOW - timedelta(hours=2),
                  "alert:limits:daily:k1:1:0.8")
    newer = sample("err", "alert:err:*:9")
    await record_alert(history_store, older, delivered=True)
    await record_alert(history_store, newer, delivered=False)
    await record_alert(history_store, newer, delivered=True)  # same id: kept as it was
    records = await list_alerts(history_store)
    assert [(r.alert, r.delivered) for r in records] == [(newer, False), (older, True)]
    assert [r.alert.id for r in await list_alerts(history_store, since=NOW - timedelta(hours=1))] \
        == [newer.id]
    assert [r.alert.id for r in await list_alerts(history_store, until=NOW)] == [older.id]
    assert len(await list_alerts(history_store, limit=1)) == 1
    view = await recent_alerts(history_store, NOW - timedelta(days=1))
    assert view[1] == {**older.to_dict(), "delivered": True}
    assert view[1]["ts"] == (NOW - timedelta(hours=2)).isoformat()


def test_tally_counts() -> None:
    t = tally([entry(1, NOW, cost="0.5", rating=5, success=True), entry(2, NOW, cost=None),
               entry(3, NOW, status="error", http=502, tried=[("m/a", "server")], cost=None)],
              "global")["*"]
    assert t == Tally(requests=3, upstream=3, errors=1, fallbacks=0, rated=1, rating_sum=5,
                      judged=1, successes=1, spend=D("0.5"))


_LIMITS_YAML = f"""
keys:
  - name: k1
    hash: "sha256:{'a' * 64}"
    team: t1
    limits: [{{usd: 4, window: day}}]
  - name: k2
    hash: "sha256:{'b' * 64}"
limits:
  - {{name: all-daily, usd: 10}}
  - {{name: team-daily, scope: team, usd: 8}}
  - {{name: vip, scope: user, match: [alice, "bob*"], requests: 2, window: hour, hard: false}}
"""


@pytest.mark.asyncio
async def test_limit_alerts_for_every_enumerable_subject(tmp_path: Path, hook: WebhookServer) -> None:
    settings = load_yaml(tmp_path, _LIMITS_YAML)
    subjects = limit_subjects(settings)
    assert subjects[0] == Subject() and Subject(key="k1") in subjects and Subject(team="t1") in subjects
    assert Subject(user="alice") in subjects and not any(s.user == "bob*" for s in subjects)
    assert Subject(policy=settings.routing.default_policy) in subjects
    state = MemoryState()
    ev = AlertEvaluator.from_settings(settings, state, None)
    ev = AlertEvaluator(config(WebhookConfig(url=hook.url), rules=[LimitRule(name="limits")]), state,
                        limiter=ev.limiter, subjects=ev.subjects)
    assert await ev.evaluate() == []
    assert isinstance(ev.limiter, Limiter)
    who = Subject(key="k1", team="t1", user="alice")
    for _ in range(2):  # $4 in 2 requests: k1 and vip at 100%, the team at 50%, all-daily at 40%
        await ev.limiter.admit(who, Amount(usd=usd_units(D("2"))))
    try:
        receipts = await ev.run_once()
        got = {r.alert.subject: (r.alert.data["share"], r.alert.severity, r.alert.message)
               for r in receipts}
        assert got == {
            "key:k1:day:usd:k1": (1.0, "critical", "limit 'key:k1:day:usd' (key k1) at 100%: $4.00 of "
                                  "$4.00 used this day — requests are refused or downgraded"),
            "team-daily:t1": (0.5, "warning", "limit 'team-daily' (team t1) at 50%: $4.00 of $8.00 "
                              "used this day"),
            "vip:alice": (1.0, "critical", "limit 'vip' (user alice) at 100%: 2 of 2 requests used "
                          "this hour")}  # a soft limit refuses nothing
        assert await ev.run_once() == [] and len(hook.received) == 3
    finally:
        await ev.aclose()


@pytest.mark.asyncio
async def test_cooldowns_of_this_process_breakers(hook: WebhookServer) -> None:
    breakers = Cooldowns()
    breakers.hold("m/local", 90)
    ev = AlertEvaluator(config(WebhookConfig(url=hook.url), rules=[CooldownRule(name="cd")]),
                        MemoryState(), cooldowns=breaker_cooldowns(breakers), clock=lambda: NOW)
    try:
        [receipt] = await ev.run_once()
        assert receipt.alert.subject == "model:m/local" and 89 < receipt.alert.data["seconds_left"] <= 90
    finally:
        await ev.aclose()
