"""Artifact round trip, determinism, and loud failures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llmroute.learn import artifact
from llmroute.learn.artifact import ArtifactError
from llmroute.learn.model import RouterModel

PROMPTS = ["Write a python function to sort a list.", "What is the capital of Peru?", ""]


def test_round_trip_predicts_the_same(handmade: RouterModel, tmp_path: Path) -> None:
    written = artifact.save(handmade, tmp_path / "router", {"date": "2026-01-01", "counts": {"n": 1}})
    assert written == tmp_path / "router.json" and (tmp_path / "router.npz").exists()
    loaded = artifact.load(tmp_path / "router.npz")
    assert loaded.models == handmade.models and loaded.tiers == handmade.tiers
    for prompt in PROMPTS:
        a, b = handmade.predict(prompt), loaded.predict(prompt)
        assert np.allclose(a.p_good, b.p_good, atol=2e-3)            # projection stored as float16
        assert np.allclose(a.expected_cost, b.expected_cost, rtol=1e-3)
    meta = artifact.read_metadata(tmp_path / "router")
    assert meta["training"]["date"] == "2026-01-01"
    assert meta["featurizer"]["name"] == "hashing-ngrams"


def test_same_model_same_bytes(handmade: RouterModel, tmp_path: Path) -> None:
    artifact.save(handmade, tmp_path / "a", {"x": 1})
    artifact.save(handmade, tmp_path / "b", {"x": 1})
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    assert (tmp_path / "a.json").read_text().replace("a.npz", "b.npz") == (tmp_path / "b.json").read_text()


def _edit(path: Path, change: dict[str, object]) -> None:
    meta = json.loads(path.read_text())
    for dotted, value in change.items():
        target = meta
        *parents, key = dotted.split(".")
        for p in parents:
            target = target[p]
        target[key] = value
    path.write_text(json.dumps(meta))


@pytest.mark.parametrize(("change", "message"), [
    ({"format_version": 999}, "format version 999"),
    ({"format": "something-else"}, "not a llmroute-router artifact"),
    ({"featurizer.name": "minilm-embeddings"}, "unknown featurizer"),
    ({"featurizer.config.bits": 14}, "config mismatch|shape"),
    ({"featurizer.config.version": 0}, "version 0"),
    ({"arrays.sha256": "0" * 64}, "different builds"),
])
def test_mismatches_fail_loudly(handmade: RouterModel, tmp_path: Path, change: dict[str, object],
                                message: str) -> None:
    path = artifact.save(handmade, tmp_path / "router")
    _edit(path, change)
    with pytest.raises(ArtifactError, match=message):
        artifact.load(path)


def test_expected_featurizer_and_missing_files(handmade: RouterModel, tmp_path: Path) -> None:
    path = artifact.save(handmade, tmp_path / "router")
    with pytest.raises(ArtifactError, match="expected 'sentence-embeddings'"):
        artifact.load(path, expect_featurizer="sentence-embeddings")
    (tmp_path / "router.npz").unlink()
    with pytest.raises(ArtifactError, match="cannot read router arrays"):
        artifact.load(path)
    with pytest.raises(ArtifactError, match="cannot read"):
        artifact.load(tmp_path / "nothing.json")


def test_wrong_model_count_is_a_shape_error(handmade: RouterModel, tmp_path: Path) -> None:
    path = artifact.save(handmade, tmp_path / "router")
    meta = json.loads(path.read_text())
    meta["models"] = meta["models"][:-1]
    path.write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="shape"):
        artifact.load(path)


def test_arrays_are_plain_and_unpickled(handmade: RouterModel, tmp_path: Path) -> None:
    artifact.save(handmade, tmp_path / "router")
    with np.load(tmp_path / "router.npz", allow_pickle=False) as data:
        assert "projection" in data.files and data["projection"].dtype == np.float16


def test_serving_imports_no_training_libraries() -> None:
    """Loading and predicting must not import scikit-learn or scipy (checked in a fresh process)."""
    import subprocess
    import sys

    code = ("import sys, llmroute.learn as L; m = L.load_default(); m.predict('hi'); "
            "bad = [k for k in sys.modules if k.split('.')[0] in {'sklearn', 'scipy', 'torch'}]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_bundled_default_artifact_loads_and_is_small() -> None:
    path = artifact.default_path()
    size = path.stat().st_size + path.with_suffix(".npz").stat().st_size
    assert size < 5_000_000
    model = artifact.load_default()
    assert "gpt-4-1106-preview" in model.models
    meta = artifact.read_metadata(path)
    assert {f["path"] for f in meta["training"]["files"]} >= {"routerbench/train.jsonl"}
    assert all(len(f["sha256"]) == 64 for f in meta["training"]["files"])
