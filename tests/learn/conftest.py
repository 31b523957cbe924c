"""Fixtures for the learned router: a tiny synthetic task whose answer is known, and a hand-made
RouterModel (no training, no scikit-learn) for artifact, ability and policy tests."""

from __future__ import annotations

import random

import numpy as np
import pytest

from llmroute.learn.data import OutcomeRecord
from llmroute.learn.features import HashingFeaturizer
from llmroute.learn.model import RouterModel, to_f32

CODE_WORDS = ["python", "function", "list", "sort", "recursion", "regex", "class", "loop", "array"]
TRIVIA_WORDS = ["capital", "river", "king", "painter", "ocean", "mountain", "war", "poet", "city"]


def synthetic_records(n: int, seed: int = 0) -> list[OutcomeRecord]:
    """Code prompts: only `coder` and `big` answer well. Trivia prompts: only `trivia` and `big` do.
    `big` costs 10× more. Outcomes are deterministic, so a router can learn them exactly."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        code = i % 2 == 0
        words = rng.sample(CODE_WORDS if code else TRIVIA_WORDS, 4)
        prompt = (f"Write a {words[0]} {words[1]} that handles {words[2]} and {words[3]}."
                  if code else f"What is the {words[0]} of the {words[1]}, {words[2]} or {words[3]}?")
        chars = float(len(prompt))
        records.append(OutcomeRecord(
            id=f"s{i}", prompt=prompt, dataset="code" if code else "trivia",
            outcomes={"coder": float(code), "trivia": float(not code), "big": 1.0},
            cost_usd={"coder": 1e-6 * chars + 2e-6 * 50, "trivia": 1e-6 * chars + 2e-6 * 5,
                      "big": 1e-5 * chars + 2e-5 * (50 if code else 5)},
            output_chars={"coder": 50.0, "trivia": 5.0, "big": 50.0 if code else 5.0}))
    return records


@pytest.fixture(scope="session")
def tiny_featurizer() -> HashingFeaturizer:
    """A small (4,096-bucket) featurizer fitted on synthetic prompts."""
    return HashingFeaturizer(bits=12, max_chars=4000).fit([r.prompt for r in synthetic_records(40)])


@pytest.fixture(scope="session")
def handmade(tiny_featurizer: HashingFeaturizer) -> RouterModel:
    """Six models over 3 latent skills with known abilities, two per tier; priced."""
    rng = np.random.default_rng(0)
    k, d = 3, 3 + tiny_featurizer.dense_dim
    projection = rng.normal(0, 0.6, (tiny_featurizer.sparse_dim, k)).astype(np.float32)
    abilities = np.hstack([rng.normal(0, 1.0, (6, k)), rng.normal(0, 0.05, (6, d - k))]).astype(np.float32)
    return RouterModel(
        featurizer=tiny_featurizer, projection=projection, latent_mean=np.zeros(k, dtype=np.float32),
        models=("s1", "s2", "m1", "m2", "c1", "c2"), abilities=abilities,
        biases=to_f32([-1.0, -0.8, 0.0, 0.2, 1.0, 1.2]), lengths=np.zeros((6, d), dtype=np.float32),
        length_biases=to_f32([3.0] * 6), input_prices=to_f32([1e-7, 1e-7, 1e-6, 1e-6, 1e-5, 1e-5]),
        output_prices=to_f32([2e-7, 2e-7, 2e-6, 2e-6, 2e-5, 2e-5]),
        tiers=("simple", "simple", "medium", "medium", "complex", "complex"))


@pytest.fixture(scope="session")
def trained() -> RouterModel:
    """The router trained on the synthetic task (needs scikit-learn)."""
    pytest.importorskip("sklearn")
    from llmroute.learn.data import OutcomeTable
    from llmroute.learn.train import TrainConfig, fit_router

    table = OutcomeTable.of(synthetic_records(120))
    config = TrainConfig(c=10.0, rank=4, tiers={"coder": "simple", "trivia": "simple", "big": "complex"})
    return fit_router(table, config, HashingFeaturizer(bits=12, max_chars=4000))
