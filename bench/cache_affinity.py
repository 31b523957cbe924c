"""Cache-aware routing measured on replayed multi-turn conversations (issue 15).

    python bench/cache_affinity.py [--data ../shared/data] [--turns 8] [--gap-s 30] [--ttl-s 300]
                                   [--expected-output N] [--system-tokens N]
                                   [--policy default rules learned]

The shared data has no multi-turn conversations, so they are built deterministically: the
RouterBench test prompts of one dataset (ARC-Challenge, MBPP, Winogrande), in id order, are
chained `--turns` at a time into one conversation; turn k's request is every earlier prompt and its
answer, then prompt k. The answer is the one gpt-4-1106-preview really gave to that prompt
(recorded in the data), whichever model is routed to, so every arm replays the same text.

Each turn goes through the real `Engine` (the shipped default policy) and, in the affinity arm,
through the gateway's real `Affinity` stage (prefix-hash identity, in-process store, the same
`steer` / `remember` the gateway calls). What is simulated is the provider: a prompt-cache model
where a model's cache holds a conversation's last prompt when that prompt had at least the model's
minimum (LiteLLM's `prompt_cache_min_tokens`, else 1,024) and is read back when the next turn runs
on that model within `--ttl-s`; OpenAI-style models cache automatically, Anthropic models write
the uncached part of every long-enough prompt (as with a breakpoint on the last message). Tokens
are the gateway's ≈4-characters estimate; cost is the catalog's prices (reads at the cached-input
price, writes at the cache-write price taken from the shared LiteLLM map where the bundled snapshot
has none). Turns are `--gap-s` simulated seconds apart.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from llmroute.cache.affinity import Warm
from llmroute.cache.affinity_stage import Affinity
from llmroute.cache.affinity_store import MemoryAffinity
from llmroute.catalog import ModelSpec
from llmroute.chat import ChatRequest
from llmroute.config import load
from llmroute.engine import Engine
from llmroute.outcome import Outcome, Plan
from llmroute.types import RouteRequest, Usage, estimate_tokens

ANSWERER = "gpt-4-1106-preview"
DATASETS = ("arc-challenge", "mbpp", "winogrande")


@dataclass(frozen=True)
class Turn:
    prompt: str
    answer: str


def conversations(path: Path, turns: int) -> list[list[Turn]]:
    """Consecutive prompts of one dataset (id order), `turns` to a conversation."""
    by_set: dict[str, list[tuple[int, Turn]]] = defaultdict(list)
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        answer = (record.get("responses") or {}).get(ANSWERER)
        if answer is None:
            continue
        index = int(str(record["id"]).rsplit(".", 1)[-1])
        by_set[record["dataset"]].append((index, Turn(record["prompt"], str(answer))))
    out = []
    for name in DATASETS:
        ordered = [t for _, t in sorted(by_set[name], key=lambda p: p[0])]
        out += [ordered[i:i + turns] for i in range(0, len(ordered) - turns + 1, turns)]
    return out


def system_prompt(source: Path, tokens: int) -> str:
    """A synthetic system prompt of about `tokens` tokens (≈4 characters each): the shared data's
    README, repeated and cut (the same in every conversation)."""
    if tokens <= 0:
        return ""
    text = source.read_text(encoding="utf-8")
    return (text * (tokens * 4 // len(text) + 1))[: tokens * 4]


def settings_yaml(prices: dict[str, Any], enabled: bool, ttl_s: float,
                  expected_output: int | None) -> str:
    """The embedded defaults, with Anthropic cache-write prices from the shared LiteLLM map."""
    models = {}
    for name in ("anthropic/claude-haiku-4-5", "anthropic/claude-sonnet-4-5"):
        per_token = prices[name.split("/", 1)[1]]["cache_creation_input_token_cost"]
        models[name] = {"cache_write_per_m": str(Decimal(repr(per_token)) * 1_000_000)}
    config: dict[str, Any] = {"models": models,
                              "cache": {"affinity": {"enabled": enabled, "ttl_s": ttl_s}}}
    if expected_output is not None:
        config["routing"] = {"expected_output_tokens": expected_output}
    return yaml.safe_dump(config)


@dataclass
class ProviderCache:
    """Per (conversation, model): when its cache was last used and how many prompt tokens it
    holds."""

    ttl_s: float
    min_tokens: dict[str, int]
    held: dict[tuple[int, str], tuple[float, int]] = field(default_factory=dict)

    def call(self, conv: int, spec: ModelSpec, prompt: int, output: int, now: float) -> Usage:
        model = spec.name
        last = self.held.get((conv, model))
        cached = min(last[1], prompt) if last and now - last[0] <= self.ttl_s else 0
        minimum = self.min_tokens.get(model.split("/", 1)[-1], 1024)
        explicit = spec.cache_write_per_m is not None
        written = prompt - cached if explicit and prompt >= minimum else 0
        if prompt >= minimum:
            self.held[(conv, model)] = (now, prompt)
        elif cached:
            self.held[(conv, model)] = (now, cached)
        return Usage(prompt, output, cached, written)


@dataclass
class Totals:
    turns: int = 0
    cost: Decimal = Decimal(0)
    cached_tokens: int = 0
    written_tokens: int = 0
    input_tokens: int = 0
    stayed: int = 0
    stayed_up: int = 0
    switched: int = 0
    warm: int = 0
    by_model: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    steer_us: list[float] = field(default_factory=list)
    remember_us: list[float] = field(default_factory=list)


async def replay(engine: Engine, convs: list[list[Turn]], gap_s: float, ttl_s: float,
                 min_tokens: dict[str, int], policy: str, system: str) -> Totals:
    now = [0.0]
    config = engine.settings.cache.affinity
    store = MemoryAffinity(config.ttl_s, config.max_entries, clock=lambda: now[0])
    stage = Affinity(config, engine.catalog, engine.settings.tier_names, store,
                     lambda m: True, clock=lambda: now[0])
    cache = ProviderCache(ttl_s, min_tokens)
    totals = Totals()
    for c, conv in enumerate(convs):
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
        for k, turn in enumerate(conv):
            now[0] = c * 100_000 + k * gap_s
            messages.append({"role": "user", "content": turn.prompt})
            await step(engine, stage, cache, c, messages, turn, totals, policy)
            messages.append({"role": "assistant", "content": turn.answer})
    return totals


async def step(engine: Engine, stage: Affinity, cache: ProviderCache, conv: int,
               messages: list[dict[str, Any]], turn: Turn, totals: Totals, policy: str) -> None:
    """One turn: route, steer, call the simulated provider, account, remember."""
    route = RouteRequest.from_messages(messages)
    decision = await engine.decide(route, policy=policy)
    plan = Plan(decision.chain, decision.tier, decision.router, decision.policy,
                decision.confidence, decision.reason, decision.input_tokens)
    req = ChatRequest("auto", {"model": "auto", "messages": list(messages)})
    t0 = time.perf_counter_ns()
    steered = await stage.steer(plan, req, "bench", decision.excluded,
                                engine.expected_usage(route))
    t1 = time.perf_counter_ns()
    model = steered.chain[0]
    spec = engine.catalog.get(model)
    assert spec is not None
    usage = cache.call(conv, spec, route.input_tokens, estimate_tokens(len(turn.answer)),
                       stage.clock())
    cost = spec.cost(usage)
    assert cost is not None
    outcome = Outcome("r", steered, model=model, usage=usage, finished=True)
    t2 = time.perf_counter_ns()
    stage.remember(req, "bench", outcome, {"content": turn.answer})
    t3 = time.perf_counter_ns()
    await asyncio.sleep(0)  # let the store write run
    if stage.enabled:
        totals.steer_us.append((t1 - t0) / 1000)
        totals.remember_us.append((t3 - t2) / 1000)
    totals.turns += 1
    totals.cost += cost
    totals.cached_tokens += usage.cached_input_tokens
    totals.written_tokens += usage.cache_write_tokens
    totals.input_tokens += usage.input_tokens
    totals.by_model[model] += 1
    if steered.affinity == "stayed":
        totals.stayed += 1
        chosen = engine.catalog.get(plan.chain[0])
        ladder = engine.settings.tier_names
        if chosen is not None and ladder.index(spec.tier or "") > ladder.index(chosen.tier or ""):
            totals.stayed_up += 1
    elif steered.affinity == "switched":
        totals.switched += 1
    elif steered.affinity == "warm":
        totals.warm += 1


def decide_us(engine: Engine, rounds: int = 20_000) -> float:
    """Median µs of the pure decision alone (`Affinity.decide`: a warm model against the router's
    choice, costs weighed), on the default tiers: warm gpt-4.1-mini, router chose gpt-4o-mini."""
    config = engine.settings.cache.affinity
    stage = Affinity(config, engine.catalog, engine.settings.tier_names,
                     MemoryAffinity(300, 10), lambda m: True, clock=lambda: 0.0)
    plan = Plan(("openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"), "simple", "rules",
                "default", 0.8, "short", 4000)
    warmth = (Warm("openai/gpt-4.1-mini", 0.0, 3500), Warm("openai/gpt-4o-mini", 0.0, 1200))
    expected = Usage(4000, 48)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        stage.decide(plan, warmth, {}, expected)
        times.append((time.perf_counter_ns() - t0) / 1000)
    return statistics.median(times)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def report(label: str, t: Totals, base: Totals | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "arm": label, "turns": t.turns, "cost_usd": float(t.cost),
        "cache_read_tokens": t.cached_tokens, "cache_write_tokens": t.written_tokens,
        "input_tokens": t.input_tokens,
        "cache_hit_share": round(t.cached_tokens / t.input_tokens, 4) if t.input_tokens else 0,
        "overridden": t.stayed, "overridden_to_higher_tier": t.stayed_up,
        "warm_but_switched": t.switched, "router_chose_warm": t.warm, "models": dict(t.by_model),
    }
    if base is not None and base.cost:
        row["cost_change"] = round(float((t.cost - base.cost) / base.cost), 6)
    if t.steer_us:
        row["steer_us_median"] = round(statistics.median(t.steer_us), 1)
        row["steer_us_p99"] = round(pct(t.steer_us, 0.99), 1)
        row["remember_us_median"] = round(statistics.median(t.remember_us), 1)
    return row


async def main(args: argparse.Namespace) -> None:
    data = Path(args.data)
    prices = json.loads((data / "prices/model_prices_and_context_window.json").read_text())
    min_tokens = {name: int(entry["prompt_cache_min_tokens"]) for name, entry in prices.items()
                  if isinstance(entry, dict) and entry.get("prompt_cache_min_tokens")}
    convs = conversations(data / "routerbench/test.jsonl", args.turns)
    system = system_prompt(data / "README.md", args.system_tokens)
    print(f"{len(convs)} conversations x {args.turns} turns, {args.gap_s:g} s apart, "
          f"provider cache TTL {args.ttl_s:g} s, expected output "
          f"{args.expected_output or 'default'}, system prompt ≈{args.system_tokens} tokens")
    with tempfile.TemporaryDirectory() as work:
        for policy in args.policy:
            totals: dict[bool, Totals] = {}
            for enabled in (False, True):
                path = Path(work) / f"affinity-{enabled}.yaml"
                text = settings_yaml(prices, enabled, args.ttl_s, args.expected_output)
                path.write_text(text, encoding="utf-8")
                engine = Engine(load(path, environ={}))
                totals[enabled] = await replay(engine, convs, args.gap_s, args.ttl_s,
                                               min_tokens, policy, system)
            rows = [report(f"{policy}: router only", totals[False], None),
                    report(f"{policy}: router + affinity", totals[True], totals[False])]
            print(json.dumps(rows, indent=None))
        print(f"Affinity.decide alone: median {decide_us(engine):.1f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--gap-s", type=float, default=30.0)
    parser.add_argument("--ttl-s", type=float, default=300.0)
    parser.add_argument("--expected-output", type=int, default=None,
                        help="routing.expected_output_tokens (default: the shipped 256)")
    parser.add_argument("--system-tokens", type=int, default=0,
                        help="prepend a synthetic system prompt of about this many tokens")
    parser.add_argument("--policy", nargs="+", default=["default", "rules", "learned"])
    asyncio.run(main(parser.parse_args()))
