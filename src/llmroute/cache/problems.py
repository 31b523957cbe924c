"""What `llmroute config check` says about `cache.response` and `cache.semantic` beyond the
schema: the semantic cache needs the response cache (its answers live there), known policies,
a static model's folder, and its encoder's packages installed (naming the extra to install)."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigProblem
from ..settings import Settings


def response_cache_problems(settings: Settings) -> list[ConfigProblem]:
    """The response and semantic caches' problems (none when both are off)."""
    response, semantic = settings.cache.response, settings.cache.semantic
    problems: list[ConfigProblem] = []
    if response.enabled and response.backend == "redis" and settings.state.url.startswith(
            "memory://"):
        problems.append(ConfigProblem(
            "cache.response.backend", "the redis backend uses `state.url`, which is memory://",
            "set state.url: redis://host:port/db, or backend: auto"))
    if not semantic.enabled:
        return problems
    if not response.enabled:
        problems.append(ConfigProblem("cache.semantic.enabled", "the semantic cache serves the "
                                      "response cache's answers, which is off",
                                      "set cache.response.enabled: true"))
    for name in semantic.policies:
        if name not in settings.policies:
            problems.append(ConfigProblem("cache.semantic.policies", f"unknown policy {name!r}",
                                          f"policies are: {', '.join(settings.policies)}"))
    if semantic.encoder == "static":
        path = semantic.static_path
        if not path or not (Path(path) / "vectors.npy").exists():
            problems.append(ConfigProblem(
                "cache.semantic.static_path", f"no static embedding model at {path!r}",
                "a folder with tokenizer.json and vectors.npy "
                "(scripts/distill_static_embeddings.py)"))
    from .semantic import missing_packages

    lacking = missing_packages(semantic)
    if lacking is not None:
        problems.append(ConfigProblem("cache.semantic.encoder", lacking,
                                      "or set cache.semantic.enabled: false"))
    return problems
