"""Cache-aware routing measured on replayed multi-turn conversations (issue 15).

    python bench/cache_affinity.py [--data ../shared/data] [--turns 8] [--gap-s 30] [--ttl-s 300]
                                   [--expected-output N] [--system-tokens N]
                                   [--policy default rules learned] [--horizon 1 0]
                                   [--follow-ups] [--tool-tokens N]

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

Longer, agent-style traffic from the same prompts: `--follow-ups K` adds, after every K-th prompt's
answer, a short follow-up (one of `FOLLOW_UPS`, at most 12 words, in turn) answered by the first
sentence of the recorded answer; `--tool-tokens N` makes every prompt an agent step: the request
carries `tools()` (ten function definitions, ≈2,500 tokens), the model's first call answers with
a tool call, the tool's result (N tokens of other RouterBench prompts, a different slice per call)
is appended and the second call gives the recorded answer. Each `--horizon` value is an affinity arm
(`cache.affinity.horizon_turns`; 0: derived from the router's picks), against the router alone.
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


@dataclass(frozen=True)
class Call:
    """One model call of a conversation: the messages appended before it, and its answer."""

    adds: tuple[dict[str, Any], ...]
    answer: dict[str, Any]


FOLLOW_UPS = ("Thanks. Can you put that in one sentence?",
              "Are you sure? Just the final answer, please.",
              "OK. Which part of that matters most?",
              "Great, thanks. Say it again more briefly?")
TOOL_NAMES = ("search_docs", "read_file", "write_file", "run_tests", "list_directory",
              "grep_repository", "http_get", "sql_query", "send_message", "lookup_calendar")


def tools() -> list[dict[str, Any]]:
    """Ten function definitions, the kind an agent framework sends with every call."""
    out = []
    for i, name in enumerate(TOOL_NAMES):
        words = name.replace("_", " ")
        params = {f"{words.split()[-1]}_{j}": {"type": "string", "description":
                  f"The {words} argument number {j}: what the call should use; see the "
                  f"agent's instructions for the accepted formats and limits."} for j in range(4)}
        out.append({"type": "function", "function": {
            "name": name, "description": f"Use {words} (tool {i}) when the task needs it. Returns "
            f"the result as text; errors come back as text that starts with 'error:'.",
            "parameters": {"type": "object", "properties": params,
                           "required": list(params)[:2]}}})
    return out


def calls_of(conv: list[Turn], c: int, follow_ups: int, tool_text: str,
             tool_tokens: int) -> list[Call]:
    """The calls a conversation makes (see the module's docstring)."""
    out = []
    for k, turn in enumerate(conv):
        user = {"role": "user", "content": turn.prompt}
        if tool_tokens:
            call_id = f"call_{c}_{k}"
            fn = {"name": TOOL_NAMES[k % len(TOOL_NAMES)],
                  "arguments": json.dumps({"query": turn.prompt[:80]})}
            out.append(Call((user,), {"content": None, "tool_calls": [
                {"id": call_id, "type": "function", "function": fn}]}))
            size = tool_tokens * 4
            start = (c * 7919 + k * 104729) % max(1, len(tool_text) - size)
            result = {"role": "tool", "tool_call_id": call_id,
                      "content": tool_text[start:start + size]}
            out.append(Call((result,), {"content": turn.answer}))
        else:
            out.append(Call((user,), {"content": turn.answer}))
        if follow_ups and k % follow_ups == follow_ups - 1:
            first = turn.answer.split(". ", 1)[0][:200]
            out.append(Call(({"role": "user", "content": FOLLOW_UPS[k % len(FOLLOW_UPS)]},),
                            {"content": first}))
    return out


def answer_tokens(answer: dict[str, Any]) -> int:
    text = answer.get("content") or json.dumps(answer.get("tool_calls") or [])
    return estimate_tokens(len(text))


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
                  expected_output: int | None, horizon: int = 1) -> str:
    """The embedded defaults, with Anthropic cache-write prices from the shared LiteLLM map."""
    models = {}
    for name in ("anthropic/claude-haiku-4-5", "anthropic/claude-sonnet-4-5"):
        per_token = prices[name.split("/", 1)[1]]["cache_creation_input_token_cost"]
        models[name] = {"cache_write_per_m": str(Decimal(repr(per_token)) * 1_000_000)}
    config: dict[str, Any] = {"models": models,
                              "cache": {"affinity": {"enabled": enabled, "ttl_s": ttl_s,
                                                     "horizon_turns": horizon}}}
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
    output_tokens: int = 0
    max_input: int = 0
    stayed: int = 0
    stayed_up: int = 0
    switched: int = 0
    warm: int = 0
    by_model: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    steer_us: list[float] = field(default_factory=list)
    remember_us: list[float] = field(default_factory=list)


async def replay(engine: Engine, convs: list[list[Call]], gap_s: float, ttl_s: float,
                 min_tokens: dict[str, int], policy: str, system: str,
                 defs: list[dict[str, Any]]) -> Totals:
    now = [0.0]
    config = engine.settings.cache.affinity
    store = MemoryAffinity(config.ttl_s, config.max_entries, clock=lambda: now[0])
    stage = Affinity(config, engine.catalog, engine.settings.tier_names, store,
                     lambda m: True, clock=lambda: now[0])
    cache = ProviderCache(ttl_s, min_tokens)
    totals = Totals()
    for c, conv in enumerate(convs):
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
        for k, call in enumerate(conv):
            now[0] = c * 100_000 + k * gap_s
            messages.extend(call.adds)
            await step(engine, stage, cache, c, messages, call.answer, totals, policy, defs)
            messages.append({"role": "assistant", **call.answer})
    return totals


async def step(engine: Engine, stage: Affinity, cache: ProviderCache, conv: int,
               messages: list[dict[str, Any]], answer: dict[str, Any], totals: Totals,
               policy: str, defs: list[dict[str, Any]]) -> None:
    """One call: route, steer, call the simulated provider, account, remember."""
    route = RouteRequest.from_messages(messages, tools=defs or None)
    decision = await engine.decide(route, policy=policy)
    plan = Plan(decision.chain, decision.tier, decision.router, decision.policy,
                decision.confidence, decision.reason, decision.input_tokens)
    body: dict[str, Any] = {"model": "auto", "messages": list(messages)}
    if defs:
        body["tools"] = defs
    req = ChatRequest("auto", body)
    t0 = time.perf_counter_ns()
    steered = await stage.steer(plan, req, "bench", decision.excluded,
                                engine.expected_usage(route))
    t1 = time.perf_counter_ns()
    model = steered.chain[0]
    spec = engine.catalog.get(model)
    assert spec is not None
    usage = cache.call(conv, spec, route.input_tokens, answer_tokens(answer), stage.clock())
    cost = spec.cost(usage)
    assert cost is not None
    outcome = Outcome("r", steered, model=model, usage=usage, finished=True)
    t2 = time.perf_counter_ns()
    stage.remember(req, "bench", outcome, answer)
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
    totals.max_input = max(totals.max_input, usage.input_tokens)
    totals.output_tokens += usage.output_tokens
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
        "input_tokens": t.input_tokens, "mean_output_tokens": round(t.output_tokens / t.turns, 1),
        "max_prompt_tokens": t.max_input,
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
    bench = data / "routerbench"
    tool_text = "\n\n".join(json.loads(line)["prompt"] for line in
                             (bench / "train.jsonl").read_text(encoding="utf-8").splitlines())
    convs = [calls_of(conv, c, args.follow_ups, tool_text, args.tool_tokens)
             for c, conv in enumerate(conversations(bench / "test.jsonl", args.turns))]
    system = system_prompt(data / "README.md", args.system_tokens)
    defs = tools() if args.tool_tokens else []
    print(f"{len(convs)} conversations x {len(convs[0])} calls ({args.turns} prompts"
          f"{f', a follow-up every {args.follow_ups}' if args.follow_ups else ''}"
          f"{f', tool results of {args.tool_tokens} tokens' if args.tool_tokens else ''}), "
          f"{args.gap_s:g} s apart, provider cache TTL {args.ttl_s:g} s, expected output "
          f"{args.expected_output or 'default'}, system prompt ≈{args.system_tokens} tokens")
    with tempfile.TemporaryDirectory() as work:
        for policy in args.policy:
            arms: list[tuple[str, bool, int]] = [("router only", False, 1)]
            arms += [(f"affinity, horizon {h or 'derived'}", True, h) for h in args.horizon]
            base: Totals | None = None
            rows = []
            for label, enabled, horizon in arms:
                path = Path(work) / f"affinity-{enabled}-{horizon}.yaml"
                text = settings_yaml(prices, enabled, args.ttl_s, args.expected_output, horizon)
                path.write_text(text, encoding="utf-8")
                engine = Engine(load(path, environ={}))
                totals = await replay(engine, convs, args.gap_s, args.ttl_s, min_tokens, policy,
                                      system, defs)
                rows.append(report(f"{policy}: {label}", totals, base))
                base = base or totals
            print(json.dumps(rows, indent=None))
        if args.decide_us:
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
    parser.add_argument("--horizon", nargs="+", type=int, default=[1, 0],
                        help="cache.affinity.horizon_turns of each affinity arm (0: derived)")
    parser.add_argument("--follow-ups", type=int, default=0, metavar="K",
                        help="a short follow-up after every K-th prompt's answer")
    parser.add_argument("--tool-tokens", type=int, default=0,
                        help="agent steps: tools in every request, a tool call, a tool result "
                             "of this many tokens, then the answer")
    parser.add_argument("--decide-us", action="store_true",
                        help="also time Affinity.decide alone")
    asyncio.run(main(parser.parse_args()))
