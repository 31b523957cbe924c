"""The `cache:` section of the configuration: response cache, semantic cache, provider prompt
caching and cache-aware routing. Every part is off by default except where noted."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ResponseCacheConfig(_Frozen):
    """Exact-match cache of complete responses."""

    enabled: bool = False
    backend: Literal["auto", "memory", "redis"] = Field(
        "auto", description="auto: Redis when `state.backend` is redis (shared by replicas), "
                            "else in-process LRU")
    ttl_s: float = Field(3600.0, gt=0, le=30 * 86400, description="default time to live; "
                         "`x-llmroute-cache-ttl` may lower or raise it per request")
    max_entries: int = Field(10_000, gt=0, description="in-process LRU bound")
    max_bytes: int = Field(64 * 1024 * 1024, gt=0, description="in-process LRU bound on the "
                                                                "stored answers' size")
    max_entry_bytes: int = Field(1024 * 1024, gt=0, description="answers larger are not stored")
    cache_nonzero_temperature: bool = Field(
        False, description="also cache requests with temperature > 0 (sampled answers)")
    scope: Literal["key", "team", "global"] = Field(
        "key", description="who shares cached answers: one gateway key (default), a team, or "
                           "every caller (only for a gateway that serves one tenant)")
    wait_s: float = Field(30.0, gt=0, description="how long identical concurrent misses wait for "
                                                  "the first one's answer (stampede protection)")


class SemanticCacheConfig(_Frozen):
    """Cache hits by embedding similarity (off by default)."""

    enabled: bool = False
    threshold: float = Field(0.95, gt=0, le=1, description="cosine similarity needed for a hit")
    policies: tuple[str, ...] = Field((), description="routing policies it serves (empty: all, "
                                                      "concrete models included)")
    max_entries: int = Field(10_000, gt=0, description="prompts kept in the in-process index "
                                                       "(oldest dropped first)")
    encoder: Literal["minilm", "static"] = Field(
        "minilm", description="minilm: all-MiniLM-L6-v2 (the `embed` extra); static: a "
                              "model2vec-style static model in `static_path` (`embed-static`)")
    static_path: str | None = Field(None, description="folder with tokenizer.json and vectors.npy "
                                                      "(scripts/distill_static_embeddings.py)")


BreakpointPlace = Literal["tools", "system", "history"]


class PromptCacheConfig(_Frozen):
    """Provider prompt caching: automatic `cache_control` breakpoints (opt-in)."""

    auto_breakpoints: bool = Field(
        False, description="mark long stable prefixes of requests to Anthropic deployments "
                           "that carry no `cache_control` of their own")
    places: tuple[BreakpointPlace, ...] = Field(
        ("tools", "system", "history"), description="where: after the last tool definition, "
        "at the end of the system prompt, at the end of the turns before the newest user turn")
    min_tokens: int = Field(1024, gt=0, description="the shortest prefix marked, for models "
                            "whose catalog entry gives no minimum (`cache_min_tokens`)")
    ttl: Literal["5m", "1h"] = Field("5m", description="the marks' cache lifetime (1h writes "
                                     "cost more: 2x input instead of 1.25x)")


class AffinityConfig(_Frozen):
    """Cache-aware routing: stay on a conversation's model while its prompt cache is warm, when
    staying is estimated to cost no more than the router's choice and the warm model is at least
    as capable (docs/caching.md, "Cache-aware routing")."""

    enabled: bool = False
    ttl_s: float = Field(300.0, gt=0, le=86400, description="how long a served prefix stays warm: "
                         "the provider's cache life (Anthropic: 5 min by default; OpenAI's "
                         "automatic cache: 5-10 min of inactivity)")
    min_prefix_tokens: int = Field(1024, ge=0, description="shorter prefixes are not cached by "
                                   "the providers (OpenAI and Anthropic: 1,024 tokens at least)")
    backend: Literal["auto", "memory", "redis"] = Field(
        "auto", description="auto: Redis when `state.url` is redis (shared by replicas), else an "
                            "in-process LRU")
    max_entries: int = Field(100_000, gt=0, description="in-process LRU bound (conversations)")
    timeout_s: float = Field(0.05, gt=0, le=5, description="per Redis call; past it (or with "
                             "Redis down) the request is routed without affinity")
    horizon_turns: int = Field(0, ge=0, le=1000, description="calls (this one included) over "
                               "which staying is weighed against switching once and then reading "
                               "the router's choice's cache: 0 derives it from how often the "
                               "router chose that model in the conversation (2 + its earlier "
                               "picks); 1 compares this call alone")


class CacheConfig(_Frozen):
    """`cache:` — see docs/caching.md."""

    response: ResponseCacheConfig = ResponseCacheConfig()
    semantic: SemanticCacheConfig = SemanticCacheConfig()
    prompt: PromptCacheConfig = PromptCacheConfig()
    affinity: AffinityConfig = AffinityConfig()
