"""The router's arrays as a gateway holds them (issue 6's idle RSS): the bundled projection (65,536
rows, the artifact's bulk) stays float16 as stored, read-only, and the policies over one artifact
share it; the latent vectors and decisions are the float32 array's, bit for bit."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from llmroute.engine import Engine
from llmroute.learn import artifact, features_kernel
from llmroute.learn.model import RouterModel
from llmroute.routers.cascade import CascadeRouter
from llmroute.routers.classifier import ClassifierRouter

TEXTS = (
    "What's 2+2?",
    "hi",
    "Write a Python function that merges two sorted lists, with tests.\n\n```py\ndef f(): pass\n```",
    "Prove that the square root of 2 is irrational; then explain the proof to a ten-year-old.",
    "Résumé d'un texte: « la mer » — 海 — ∑ x² ?",
    "Translate into German: the quick brown fox jumps over the lazy dog. " * 40,
    "",
)


@pytest.fixture(scope="module")
def bundled() -> RouterModel:
    return artifact.load_default()


def test_the_bundled_projection_stays_float16_and_read_only(bundled: RouterModel) -> None:
    projection = bundled.projection
    assert projection.dtype == np.float16
    assert projection.nbytes == 65536 * 16 * 2     # 2 MiB, not the 4 MiB of float32
    assert not projection.flags.writeable


def _as_float32(model: RouterModel) -> RouterModel:
    return replace(model, projection=model.projection.astype(np.float32))


def test_the_float16_projection_gives_the_float32_latents_bit_for_bit(bundled: RouterModel) -> None:
    wide = _as_float32(bundled)
    for text in TEXTS:
        np.testing.assert_array_equal(bundled.latent(text), wide.latent(text))   # numpy path
        np.testing.assert_array_equal(bundled.serving_latent(text), wide.serving_latent(text))
        half, full = bundled.predict(text), wide.predict(text)
        np.testing.assert_array_equal(half.p_good, full.p_good)
        np.testing.assert_array_equal(half.expected_cost, full.expected_cost)


@pytest.mark.skipif(not features_kernel.available(), reason="the C kernel is not built here")
def test_the_kernel_reads_float16_rows_exactly() -> None:
    """Every float16 value (subnormals, zeros of both signs, the largest) widens to its float32."""
    from llmroute.learn import _kernel  # type: ignore[attr-defined]

    values = np.arange(65536, dtype=np.uint16).view(np.float16)
    finite = values[np.isfinite(values)].reshape(-1, 1)
    mean = np.zeros(1, dtype=np.float32)
    half = _kernel.Projector(np.ascontiguousarray(finite), mean)
    full = _kernel.Projector(np.ascontiguousarray(finite.astype(np.float32)), mean)
    one = np.ones(1, dtype=np.float32).tobytes()
    for i in range(0, len(finite), 97):
        idx = np.array([i], dtype=np.int64).tobytes()
        assert half.latent(idx, one, b"") == full.latent(idx, one, b"")
        assert np.frombuffer(half.latent(idx, one, b""), dtype=np.float32)[0] == np.float32(finite[i, 0])


def _classifiers(engine: Engine) -> list[ClassifierRouter]:
    found: list[ClassifierRouter] = []
    for router in engine.policies.values():
        if isinstance(router, ClassifierRouter):
            found.append(router)
        elif isinstance(router, CascadeRouter):
            found += [s.router for s in router.stages if isinstance(s.router, ClassifierRouter)]
    return found


def test_the_policies_over_the_bundled_artifact_share_its_arrays() -> None:
    engine = Engine.from_config(None, environ={})
    classifiers = _classifiers(engine)
    assert len(classifiers) >= 2                   # the default policy's stage and `learned`
    first = classifiers[0].model.projection
    for router in classifiers[1:]:
        assert np.shares_memory(router.model.projection, first)


@pytest.mark.skipif(not features_kernel.available(), reason="the C kernel is not built here")
@pytest.mark.parametrize("k", [1, 8, 12, 16, 64])
def test_the_simd_sums_are_the_scalar_sums_bit_for_bit(k: int) -> None:
    """Where the CPU has AVX and F16C the float16 rows are summed eight outputs at a time: the
    same latents, bit for bit, as the scalar loop (and as a float32 projection), for every width."""
    from llmroute.learn import _kernel  # type: ignore[attr-defined]

    rng = np.random.default_rng(k)
    rows = rng.standard_normal((4096, k)).astype(np.float16)
    rows[rng.random(rows.shape) < 0.01] = np.float16(6e-8)        # some subnormals
    mean = rng.standard_normal(k).astype(np.float32)
    half = _kernel.Projector(np.ascontiguousarray(rows), mean)
    full = _kernel.Projector(np.ascontiguousarray(rows.astype(np.float32)), mean)
    was = _kernel.simd()
    if not _kernel.simd(True):
        pytest.skip("this CPU has no AVX and F16C: the scalar loop is the only one")
    try:
        for _ in range(50):
            n = int(rng.integers(0, 300))
            idx = rng.integers(0, 4096, n).astype(np.int64).tobytes()
            val = rng.standard_normal(n).astype(np.float32).tobytes()
            dense = rng.standard_normal(3).astype(np.float32).tobytes()
            _kernel.simd(True)
            fast = half.latent(idx, val, dense)
            _kernel.simd(False)
            assert fast == half.latent(idx, val, dense) == full.latent(idx, val, dense)
        with pytest.raises(IndexError):
            _kernel.simd(True)
            half.latent(np.array([4096], dtype=np.int64).tobytes(), np.ones(1, np.float32).tobytes(), b"")
    finally:
        _kernel.simd(was)


@pytest.mark.skipif(not features_kernel.available(), reason="the C kernel is not built here")
def test_the_bundled_latents_are_the_same_with_and_without_simd(bundled: RouterModel) -> None:
    from llmroute.learn import _kernel  # type: ignore[attr-defined]

    was = _kernel.simd()
    if not _kernel.simd(True):
        pytest.skip("this CPU has no AVX and F16C: the scalar loop is the only one")
    try:
        fast = [bundled.serving_latent(text).tobytes() for text in TEXTS]
        _kernel.simd(False)
        assert fast == [bundled.serving_latent(text).tobytes() for text in TEXTS]
    finally:
        _kernel.simd(was)
