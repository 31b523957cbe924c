"""What a caller asks of the response cache for one request, parsed from its headers at the edge
(`chat.with_headers`) into a typed `CacheDirective` on the core `ChatRequest`.

- `Cache-Control: no-cache`: do not answer from the cache, but store the fresh answer.
- `Cache-Control: no-store`: neither read nor store (other directives in the header are ignored,
  as HTTP caches ignore the ones they do not know).
- `x-llmroute-cache-ttl: <seconds>`: how long this answer is kept (a positive number, at most 30
  days); it also opts a sampled request (temperature > 0, or no temperature) into the cache.
  Anything else is a 400 naming the header.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import InvalidRequestError

TTL_HEADER = "x-llmroute-cache-ttl"
MAX_TTL_S = 30 * 86400.0


@dataclass(frozen=True)
class CacheDirective:
    """read: an answer may come from the cache; write: the answer may be stored; ttl_s: this
    answer's time to live (None: the configured default)."""

    read: bool = True
    write: bool = True
    ttl_s: float | None = None


DEFAULT = CacheDirective()


def parse_ttl(value: str) -> float:
    """A TTL header's seconds, or a 400 naming the header."""
    try:
        ttl = float(value.strip())
    except ValueError:
        ttl = math.nan
    if not (math.isfinite(ttl) and 0 < ttl <= MAX_TTL_S):
        raise InvalidRequestError(
            f"Header {TTL_HEADER} must be a number of seconds greater than 0 and at most "
            f"{MAX_TTL_S:.0f}, got {value!r}.", param=TTL_HEADER)
    return ttl


def cache_directive(headers: Mapping[str, str]) -> CacheDirective:
    """The directive in a request's headers (DEFAULT when it sends none of them)."""
    control = ttl = None
    for name, value in headers.items():  # one pass, any case (a plain dict from the Client)
        lowered = name.lower()
        if lowered == "cache-control":
            control = value
        elif lowered == TTL_HEADER:
            ttl = value
    if control is None and ttl is None:
        return DEFAULT
    words = {part.strip().lower() for part in (control or "").split(",")}
    no_store = "no-store" in words
    return CacheDirective(read=not no_store and "no-cache" not in words, write=not no_store,
                          ttl_s=parse_ttl(ttl) if ttl is not None else None)
