"""Routing-decision benchmark: time per decision for each router and for the whole engine.

Run by hand: `python bench/bench_routing.py [--repeat N]`; record results in docs/benchmarks.md.
Prompts: a short one and a ~2,000-token one (with and without keywords that end the rules early).
A baseline (`str.lower` of the long prompt) is timed in the same run, so ratios survive a noisy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import time
from collections.abc import Callable

import llmroute
from llmroute.constraints import Candidates
from llmroute.engine import Engine
from llmroute.types import RouteRequest

FILLER = ("The committee reviewed the quarterly figures and discussed the upcoming schedule for the "
          "regional offices, noting that several teams had asked for more time to prepare. ")


def long_prompt(tokens: int, tail: str = "") -> str:
    """About `tokens` tokens (≈4 characters each) of neutral prose, then `tail`."""
    text = FILLER * (tokens * 4 // len(FILLER) + 1)
    return text[: tokens * 4] + tail


def timeit(fn: Callable[[], object], repeat: int) -> list[float]:
    """Per-call times in microseconds (after a warm-up)."""
    for _ in range(min(200, repeat)):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


def row(name: str, samples: list[float], base: float) -> str:
    q = statistics.quantiles(samples, n=100)
    p50, p99 = statistics.median(samples), q[98]
    return f"| {name} | {p50:.1f} | {p99:.1f} | {p50 / base:.1f}× |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5000)
    args = parser.parse_args()
    engine = Engine(llmroute.config.load(environ={}))
    found_cache: dict[str, Candidates] = {}
    cases = {
        "short prompt (8 words)": "Translate 'good morning' into French, please.",
        "2,000 tokens, no rule fires (worst case)": long_prompt(2000),
        "2,000 tokens, keyword at the end": long_prompt(2000, " Please debug this."),
    }
    base_text = cases["2,000 tokens, no rule fires (worst case)"]
    base = statistics.median(timeit(lambda: base_text.lower(), args.repeat))
    print(f"python {platform.python_version()} on {platform.machine()}, {args.repeat} runs each")
    print(f"baseline: str.lower() of the 2,000-token prompt = {base:.1f} µs (p50)\n")
    print("| what | p50 µs | p99 µs | × baseline |\n|---|---|---|---|")
    loop = asyncio.new_event_loop()
    for label, prompt in cases.items():
        request = RouteRequest.from_prompt(prompt)
        found = found_cache.setdefault(label, engine.candidates(request))
        for policy in ("rules", "default", "random"):
            router = engine.policies[policy]
            print(row(f"{policy} router · {label}",
                      timeit(lambda r=router, q=request, f=found: r.decide(q, f), args.repeat), base))
        print(row(f"parse messages · {label}",
                  timeit(lambda p=prompt: RouteRequest.from_prompt(p), args.repeat), base))
        print(row(f"engine.decide (all steps) · {label}",
                  timeit(lambda q=request: loop.run_until_complete(engine.decide(q)), args.repeat),
                  base))
    loop.close()


if __name__ == "__main__":
    main()
