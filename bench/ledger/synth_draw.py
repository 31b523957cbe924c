"""One batch of synthetic requests drawn from the world (`synth_world`), as numpy columns.

Indexes stand for names (key, policy, router, tier, model, arm, error kind; -1: none); money is in
nano-dollars (-1: unknown). Drawn column by column, so a batch of 50,000 takes tens of milliseconds.
A batch depends only on (seed, batch number), never on what was drawn before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import synth_world as w


@dataclass(frozen=True)
class Shares:
    """What share of requests fail, succeed only on a fallback, get feedback, or store text."""

    error: float = 0.02
    fallback: float = 0.03
    feedback: float = 0.10
    text: float = 0.0


@dataclass
class Batch:
    """n requests: one numpy array per column (see the module docstring for the encoding)."""

    ids: list[str]
    ts_us: np.ndarray
    key: np.ndarray
    user: np.ndarray
    policy: np.ndarray
    router: np.ndarray
    tier: np.ndarray
    confidence: np.ndarray
    reason: np.ndarray
    arm: np.ndarray
    model: np.ndarray
    error: np.ndarray
    fallback_model: np.ndarray
    fallback_kind: np.ndarray
    fallback_latency: np.ndarray
    stream: np.ndarray
    latency: np.ndarray
    upstream: np.ndarray
    ttft: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    cached_tokens: np.ndarray
    estimated: np.ndarray
    cost_nano: np.ndarray
    baseline_nano: np.ndarray
    rating: np.ndarray
    success: np.ndarray
    feedback_us: np.ndarray
    comment: np.ndarray
    text: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def _pick(rng: np.random.Generator, table: np.ndarray, row: np.ndarray) -> np.ndarray:
    """For each i, an index drawn with the probabilities table[row[i]] (rows of `table` sum to 1)."""
    cumulative = np.cumsum(table, axis=1)[row]
    picked: np.ndarray = np.minimum((rng.random(len(row))[:, None] >= cumulative).sum(axis=1),
                                    table.shape[1] - 1)
    return picked


def _shares(weights: list[float]) -> np.ndarray:
    values = np.asarray(weights, dtype=float)
    shares: np.ndarray = values / values.sum()
    return shares


def _routing(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Key, arm, policy, router, tier and model of each request."""
    key = rng.choice(len(w.KEYS), n, p=_shares([k.weight for k in w.KEYS]))
    in_arm = rng.random(n) < sum(a.share for a in w.ARMS)
    arm = np.where(in_arm, rng.choice(len(w.ARMS), n, p=_shares([a.share for a in w.ARMS])), -1)
    policy = rng.choice(len(w.POLICIES), n, p=_shares([p.weight for p in w.POLICIES]))
    arm_policy = np.array([w.POLICY_INDEX[a.policy] for a in w.ARMS])
    policy = np.where(arm >= 0, arm_policy[np.maximum(arm, 0)], policy)
    routers = np.zeros((len(w.POLICIES), len(w.ROUTERS)))
    for i, p in enumerate(w.POLICIES):
        for name, share in p.routers:
            routers[i, w.ROUTERS.index(name)] = share
    tier = _pick(rng, np.array([p.tiers for p in w.POLICIES]), policy)
    models = np.zeros((len(w.TIERS), len(w.MODELS)))
    for t, name in enumerate(w.TIERS):
        for model, share in w.TIER_MODELS[name]:
            models[t, w.MODEL_INDEX[model]] = share
    router = _pick(rng, routers, policy)
    reasons = np.array([len(w.REASONS[r]) for r in w.ROUTERS])
    return {"key": key, "arm": arm, "policy": policy, "router": router, "tier": tier,
            "model": _pick(rng, models, tier), "reason": rng.integers(0, 1 << 30, n) % reasons[router]}


def _confidence(rng: np.random.Generator, router: np.ndarray) -> np.ndarray:
    """Rules: one of their fixed confidences; classifier: a probability; fixed: 1.0."""
    rules = rng.choice(np.array([0.9, 0.8, 0.75, 0.7]), len(router))
    learned = np.round(rng.uniform(0.5, 0.99, len(router)), 4)
    return np.select([router == 0, router == 1], [rules, learned], 1.0)


def _usage(rng: np.random.Generator, n: int, tier: np.ndarray) -> tuple[np.ndarray, ...]:
    """Input, output and cached tokens (cached: a multiple of 128 on a third of long prompts)."""
    inputs = np.clip(rng.lognormal(np.log(900), 1.0, n), 5, 200_000).astype(np.int64)
    outputs = np.clip(rng.lognormal(np.log(180) + 0.25 * tier, 0.8, n), 1, 16_000).astype(np.int64)
    cached = (inputs * rng.uniform(0.2, 0.9, n)).astype(np.int64) // 128 * 128
    cached = np.where((inputs >= 1024) & (rng.random(n) < 0.35), cached, 0)
    return inputs, outputs, cached


def _money(model: np.ndarray, usage: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Cost and baseline cost in nano-dollars (-1: unpriced): exact integer arithmetic."""
    inputs, outputs, cached = usage

    def cost(prices: np.ndarray) -> np.ndarray:
        cached_price = np.where(prices[:, 2] >= 0, prices[:, 2], prices[:, 0])
        total = (inputs - cached) * prices[:, 0] + cached * cached_price + outputs * prices[:, 1]
        return np.where(prices[:, 0] >= 0, total, -1)

    table = np.array([[w.nano_price(m.input_per_m), w.nano_price(m.output_per_m),
                       w.nano_price(m.cached_per_m)] for m in w.MODELS], dtype=np.int64)
    baseline = table[w.MODEL_INDEX[w.BASELINE]]
    return cost(table[model]), cost(np.broadcast_to(baseline, (len(model), 3)))


def _latency(rng: np.random.Generator, model: np.ndarray, outputs: np.ndarray,
             error: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(total latency, upstream latency): lognormal around the model's median, longer for longer
    answers; timeouts take 30-120 s; the gateway adds a few milliseconds."""
    median = np.array([m.median_latency_s for m in w.MODELS])[model]
    upstream = rng.lognormal(np.log(median) + 0.35 * np.log(outputs / 180), 0.45)
    timeout = error == w.ERRORS.index(next(e for e in w.ERRORS if e.code == "timeout"))
    upstream = np.where(timeout, rng.uniform(30, 120, len(model)), upstream)
    overhead = rng.lognormal(np.log(0.003), 0.4, len(model))
    return upstream + overhead, upstream


def _feedback(rng: np.random.Generator, n: int, tier: np.ndarray, ok: np.ndarray, shares: Shares,
              ts_us: np.ndarray, end_us: int) -> dict[str, np.ndarray]:
    """Ratings (0: none), task success (-1: none), feedback times (-1: none), comments (-1: none)."""
    given = ok & (rng.random(n) < shares.feedback)
    rated = given & (rng.random(n) < 0.8)
    rating = _pick(rng, np.array([w.RATINGS[t] for t in w.TIERS]), tier) + 1
    judged = given & (rng.random(n) < 0.85)
    success = (rng.random(n) < np.array([w.SUCCESS[t] for t in w.TIERS])[tier]).astype(np.int64)
    delay = (rng.lognormal(np.log(180), 1.2, n) * 1e6).astype(np.int64)
    when = np.minimum(ts_us + delay, end_us - 1)
    comment = rng.integers(0, len(w.COMMENTS), n)
    return {"rating": np.where(rated, rating, 0), "success": np.where(judged, success, -1),
            "feedback_us": np.where(rated | judged, when, -1),
            "comment": np.where((rated | judged) & (rng.random(n) < 0.05), comment, -1)}


def _fallbacks(rng: np.random.Generator, n: int, tier: np.ndarray, model: np.ndarray,
               ok: np.ndarray, shares: Shares) -> dict[str, np.ndarray]:
    """Requests that succeeded on a fallback: the model that failed first, how, and how long it took
    (-1 / 0.0 for the others). Failed requests with two tries use the same columns."""
    primary = np.array([w.MODEL_INDEX[w.TIER_MODELS[t][0][0]] for t in w.TIERS])[tier]
    second = np.array([w.MODEL_INDEX[w.TIER_MODELS[t][1][0]] for t in w.TIERS])[tier]
    first = np.where(primary == model, second, primary)
    fell_back = ok & (rng.random(n) < shares.fallback)
    kind = rng.integers(0, len(w.FALLBACK_FAILURES), n)
    return {"fallback_model": np.where(fell_back, first, -1), "fallback_kind": np.where(fell_back, kind, -1),
            "fallback_latency": np.where(fell_back, rng.uniform(0.05, 0.8, n), 0.0)}


def _ids(rng: np.random.Generator, n: int) -> list[str]:
    """Request ids shaped like the gateway's: `req_` + 32 hex digits."""
    digits = rng.bytes(16 * n).hex()
    return ["req_" + digits[i:i + 32] for i in range(0, 32 * n, 32)]


def _errors(rng: np.random.Generator, n: int, shares: Shares) -> np.ndarray:
    """The error kind of each request (-1: it succeeded)."""
    kind = rng.choice(len(w.ERRORS), n, p=_shares([e.weight for e in w.ERRORS]))
    return np.where(rng.random(n) < shares.error, kind, -1)


def _users(rng: np.random.Generator, key: np.ndarray) -> np.ndarray:
    """A user number per request, Zipf-distributed within its key's users (-1: the key names none)."""
    users = np.array([k.users for k in w.KEYS])[key]
    drawn = np.minimum(rng.zipf(1.4, len(key)), np.maximum(users, 1)) - 1
    return np.where(users > 0, drawn, -1)


def draw(seed: int, number: int, first: int, n: int, timeline: w.Timeline, shares: Shares) -> Batch:
    """Batch `number`: requests first..first+n-1 of the ledger seeded with `seed`."""
    rng = np.random.default_rng([seed, number])
    ts_us = timeline.times(first, first + n, rng)
    route = _routing(rng, n)
    error = _errors(rng, n, shares)
    ok = error < 0
    usage = _usage(rng, n, route["tier"])
    cost, baseline = _money(route["model"], usage)
    latency, upstream = _latency(rng, route["model"], usage[1], error)
    fallback = _fallbacks(rng, n, route["tier"], route["model"], ok, shares)
    two_tries = np.array([e.attempts == 2 for e in w.ERRORS])[np.maximum(error, 0)] & ~ok
    primary = np.array([w.MODEL_INDEX[w.TIER_MODELS[t][0][0]] for t in w.TIERS])[route["tier"]]
    fallback["fallback_model"] = np.where(two_tries, primary, fallback["fallback_model"])
    fallback["fallback_latency"] = np.where(two_tries, rng.uniform(0.05, 0.8, n),
                                            fallback["fallback_latency"])
    refused = ~ok & ~two_tries & (np.array([e.attempts for e in w.ERRORS])[np.maximum(error, 0)] == 0)
    latency = np.where(refused, latency - upstream, latency + fallback["fallback_latency"])
    stream = rng.random(n) < np.array([k.stream_share for k in w.KEYS])[route["key"]]
    llama = route["model"] == w.MODEL_INDEX["local/llama-3.1-8b"]
    return Batch(
        ids=_ids(rng, n), ts_us=ts_us, key=route["key"], user=_users(rng, route["key"]),
        policy=route["policy"], router=route["router"], tier=route["tier"],
        confidence=_confidence(rng, route["router"]), reason=route["reason"], arm=route["arm"],
        model=route["model"], error=error, **fallback, stream=stream, latency=latency,
        upstream=upstream, ttft=np.where(stream & ok, latency * rng.uniform(0.05, 0.35, n), -1.0),
        input_tokens=usage[0], output_tokens=usage[1], cached_tokens=usage[2],
        estimated=ok & (llama | (stream & (rng.random(n) < 0.02))),
        cost_nano=np.where(ok, cost, -1), baseline_nano=np.where(ok, baseline, -1),
        **_feedback(rng, n, route["tier"], ok, shares, ts_us, timeline.end_us),
        text=rng.random(n) < shares.text)
