"""The featurizer's compiled kernel (`features_kernel`, `_kernel.c`) gives the pure path's features bit
for bit (`transform_pure`: the short-text path and numpy), and so the same P(good), costs and
decisions, on the ~1,800 texts of `test_features_short.py` plus long ones (past the tail block's
2,000 characters and past `max_chars`, where the text is clipped).

Skipped when the kernel is not built, unless `LLMROUTE_REQUIRE_KERNEL=1` (CI sets it: `.ci/run`),
where a missing kernel fails instead."""

from __future__ import annotations

import os
import random
from dataclasses import replace

import numpy as np
import pytest

from llmroute.learn import artifact, features_kernel
from llmroute.learn.features import HashingFeaturizer
from llmroute.learn.model import RouterModel
from llmroute.learn.policy import by_target, by_tradeoff

from .test_features_short import _same, corpus

if not features_kernel.available():
    if os.environ.get("LLMROUTE_REQUIRE_KERNEL") == "1":
        raise RuntimeError("LLMROUTE_REQUIRE_KERNEL=1 but the C kernel is not built (hatch_build.py)")
    pytest.skip("the featurizer's C kernel is not built", allow_module_level=True)


def long_texts() -> list[str]:
    """Texts past the short path: dataset prompts glued together, cut at lengths around the tail
    block's cap and `max_chars`, with blank-line blocks, trailing whitespace and non-ASCII text."""
    rng = random.Random(7)
    base = corpus()
    out = []
    for n in (401, 1_999, 2_000, 2_001, 2_003, 4_000, 11_999, 12_000, 12_001, 15_000, 30_000):
        glued = ""
        while len(glued) < n:
            glued += rng.choice(base) + rng.choice(("\n\n", " ", "\n", "\n\n  \t"))
        out += [glued[:n], glued[-n:] + "  \n\n "]
    out += ["İ" * 12_500, "a" * 20_000, "?\n\n" * 5_000, "word " * 3_000 + "\n\nWhy 42?"]
    return out


@pytest.fixture(scope="module")
def bundled() -> RouterModel:
    return artifact.load_default()


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return corpus() + long_texts()


@pytest.mark.parametrize("fitted", [False, True])
def test_kernel_features_are_bit_identical(bundled: RouterModel, texts: list[str], fitted: bool) -> None:
    featurizer = bundled.featurizer
    assert isinstance(featurizer, HashingFeaturizer)
    if not fitted:
        featurizer = HashingFeaturizer(featurizer.bits, featurizer.char_sizes, featurizer.max_chars)
    kernel = featurizer._kernel
    assert kernel is not None
    for text in texts:
        row = kernel.row(text)
        assert row is not None, repr(text[:80])
        assert _same(row, featurizer.transform_pure(text)), repr(text[:80])
        assert _same(featurizer.transform(text), row)


def test_lower_case_and_last_block_in_c_are_pythons(bundled: RouterModel, texts: list[str]) -> None:
    featurizer = bundled.featurizer
    assert isinstance(featurizer, HashingFeaturizer) and featurizer._kernel is not None
    extra = ["a \u2029\u00a0\x1c\x1d\x1e\x1f\x85 ", "q?\n\n \u3000", "x\n\n\n\ny?", "\n\n"]
    for text in texts + extra:
        assert featurizer._kernel.raw(text) == featurizer._kernel.raw_in_python(text), repr(text[:80])


def test_kernel_features_of_other_parameters(texts: list[str]) -> None:
    featurizer = HashingFeaturizer(bits=12, char_sizes=(2, 4), max_chars=3_000)
    assert featurizer._kernel is not None
    for text in texts[::7]:
        assert _same(featurizer._kernel.row(text) or featurizer.transform_pure(""),
                     featurizer.transform_pure(text)), repr(text[:80])


def test_latent_and_predictions_match_the_pure_path(bundled: RouterModel, texts: list[str]) -> None:
    """The kernel's latent (the projection summed in float64, not numpy's float32 BLAS order):
    z within float32 rounding, P(good) within 1e-6, and every decision the same."""
    assert isinstance(bundled.featurizer, HashingFeaturizer) and bundled._fast is not None
    pool = list(bundled.models[:7])
    worst_p = 0.0
    for text in texts:
        fast, pure = bundled.serving_latent(text), bundled.latent(text)
        assert fast.dtype == pure.dtype and fast.shape == pure.shape
        assert np.allclose(fast, pure, rtol=1e-5, atol=1e-6), repr(text[:80])
        dense = bundled.featurizer.dense_dim
        assert fast[-dense:].tobytes() == pure[-dense:].tobytes()
        got = bundled.predict(text, pool)
        p, cost, _ = bundled.predict_latent(pure, len(text), pool)
        worst_p = max(worst_p, float(np.max(np.abs(got.p_good - p))))
        assert np.allclose(got.expected_cost, cost, rtol=1e-5, atol=0, equal_nan=True)
        for target in (0.5, 0.7, 0.9):
            assert by_target(got.p_good, got.expected_cost, target).index == by_target(p, cost, target).index
        for lam in (0.0, 50.0, 1000.0):
            assert by_tradeoff(got.p_good, got.expected_cost, lam).index == by_tradeoff(p, cost, lam).index
    assert worst_p <= 1e-6


def test_decisions_through_the_default_policy_are_the_pure_paths(bundled: RouterModel,
                                                                 texts: list[str]) -> None:
    """The gateway's default policy decides the same with the kernel as without it."""
    import llmroute
    from llmroute.engine import Engine
    from llmroute.types import RouteRequest

    engine = Engine(llmroute.config.load(environ={}))
    router = engine.policies["default"]
    decided = []
    for text in texts[::3]:
        request = RouteRequest.from_prompt(text)
        decided.append(router.decide(request, engine.candidates(request)))
    classifier = router.stages[-1].router                     # the cascade's learned stage
    classifier.model = replace(classifier.model)              # a copy ...
    object.__setattr__(classifier.model, "_fast", None)       # ... without the kernel's latent
    for text, before in zip(texts[::3], decided, strict=True):
        request = RouteRequest.from_prompt(text)
        after = router.decide(request, engine.candidates(request))
        assert (after.tier, after.models) == (before.tier, before.models), repr(text[:80])


def test_lone_surrogates_are_left_to_the_pure_path(bundled: RouterModel) -> None:
    featurizer = bundled.featurizer
    assert isinstance(featurizer, HashingFeaturizer) and featurizer._kernel is not None
    for lone in ("bad \ud800 surrogate", "x" * 500 + "\udfff"):
        assert featurizer._kernel.row(lone) is None
        with pytest.raises(UnicodeEncodeError):
            featurizer.transform(lone)


def test_rows_are_writable_arrays_of_the_pure_dtypes(bundled: RouterModel) -> None:
    featurizer = bundled.featurizer
    assert isinstance(featurizer, HashingFeaturizer) and featurizer._kernel is not None
    row = featurizer._kernel.row("What is 2+2?")
    assert row is not None and row.indices.flags.writeable and row.values.flags.writeable
    assert (row.indices.dtype, row.values.dtype, row.dense.dtype) == (
        np.dtype(np.int64), np.dtype(np.float32), np.dtype(np.float32))


def test_the_kernel_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMROUTE_NO_KERNEL", "1")
    assert not features_kernel.available()
    assert HashingFeaturizer()._kernel is None


@pytest.mark.parametrize("bits", [12, 18, 20])
def test_every_key_count_sorts_as_the_pure_path(bits: int) -> None:
    """The kernel's key sort picks its radix digits by the number of keys (narrow ones for a short
    prompt's few dozen, the former two passes from a few hundred on): texts of every length up to
    1,300 characters (a few to a few thousand keys, each digit width) give the pure path's
    features."""
    featurizer = HashingFeaturizer(bits=bits, char_sizes=(3, 4, 5), max_chars=6_000)
    assert featurizer._kernel is not None
    rng = random.Random(bits)
    words = ["what", "is", "2+2?", "Explain", "the", "proof", "x1", "über", "naïve", "42", "\n\n"]
    text = ""
    while len(text) < 1_300:
        text += rng.choice(words) + rng.choice((" ", " ", "\n"))
    for n in [*range(0, 200), *range(200, 1_300, 37)]:
        row = featurizer._kernel.row(text[:n])
        assert _same(row or featurizer.transform_pure(""), featurizer.transform_pure(text[:n])), n
