"""What learning online adds to a routing decision (issue 13): `Engine.decide` with the classifier,
learning off, online on (explore 0) and online with 5% exploration, each also with the shared term
off (and plain Thompson exploration: the defaults before them), and with a cap on explorations
in flight (`explore_pending`), interleaved so that a noisy
machine slows all of them alike.

    python bench/online_overhead.py [--rounds 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from llmroute.config import load
from llmroute.engine import Engine
from llmroute.types import RouteRequest

CONFIG = """
tiers:
  simple: {model: openai/gpt-4o-mini}
  medium: {model: openai/gpt-4.1-mini}
  complex: {model: anthropic/claude-sonnet-4-5}
policies:
  learned: {router: classifier, quality_target: 0.7}
routing: {default_policy: learned}
"""
PROMPT = ("Write a Python function that parses ISO 8601 durations, with unit tests for the edge "
          "cases, and explain the trickiest part in two sentences.")


def engine(work: Path, name: str, learning: str) -> Engine:
    path = work / f"{name}.yaml"
    path.write_text(CONFIG + learning, encoding="utf-8")
    return Engine(load(path, environ={}))


async def main(rounds: int) -> None:
    work = Path(tempfile.mkdtemp())
    engines = {"off": engine(work, "off", ""),
               "online": engine(work, "on", "learning: {online: true}\n"),
               "online+explore 0.05": engine(work, "ex", "learning: {online: true, explore: 0.05}\n"),
               # the defaults before the shared term and challenger exploration, for an A/B
               "online, shared 0": engine(work, "on0", "learning: {online: true, shared: 0}\n"),
               "online+explore 0.05, thompson, shared 0": engine(
                   work, "ex0", "learning: {online: true, explore: 0.05, shared: 0, "
                                "explore_strategy: thompson}\n"),
               # a cap on explorations in flight (issue 13, delayed feedback)
               "online+explore 0.05, pending 2": engine(
                   work, "exp", "learning: {online: true, explore: 0.05, explore_pending: 2}\n")}
    request = RouteRequest.from_prompt(PROMPT)
    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(rounds):
        for name, e in engines.items():
            start = time.perf_counter()
            await e.decide(request)
            times[name].append(time.perf_counter() - start)
    for name, samples in times.items():
        samples.sort()
        print(f"{name}: median {statistics.median(samples) * 1e6:.0f} µs, "
              f"p99 {samples[int(0.99 * len(samples))] * 1e6:.0f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2000)
    asyncio.run(main(parser.parse_args().rounds))
