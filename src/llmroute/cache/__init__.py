"""Caching (issue 15): the response cache (exact and semantic), the provider prompt-cache policy
(automatic `cache_control` breakpoints) and cache-aware routing (conversation affinity). The
configuration is `config.CacheConfig` (`cache:` in YAML); nothing here imports the HTTP layer."""
