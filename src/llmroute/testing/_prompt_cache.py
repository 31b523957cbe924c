"""The fake upstream's provider prompt caches, deterministic and in memory.

Anthropic (explicit): a request whose tools, system or message blocks carry `cache_control`
reads the longest cached prefix ending at a block boundary up to 20 blocks before one of its
breakpoints, and writes every breakpoint's prefix of at least `min_tokens` that it did not read;
an entry lives 5 minutes (or 1 hour, `ttl: "1h"`) from its last write or read. Without a
breakpoint nothing is cached and the usage is the fake's usual one.

OpenAI (automatic): a prompt of at least 1024 tokens reads the longest prefix, in steps of 128
tokens from 1024, that an earlier request of the same model sent within 5 minutes.

Tokens are the fake's ≈4 characters each: a prefix of c characters is c // 4 tokens, a whole
prompt c // 4 + 1. A block's characters: its text (a tool result's texts), else its JSON.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from llmroute.testing._wire import CacheUsage, JsonObject, text_of

#: Anthropic looks this many blocks back from a breakpoint for a cached prefix.
LOOKBACK_BLOCKS: Final = 20
TTL_S: Final = {"5m": 300.0, "1h": 3600.0}
#: OpenAI's automatic caching: the shortest cached prompt, the step, and how long a prefix lives.
OPENAI_MIN_TOKENS: Final = 1024
OPENAI_STEP: Final = 128
OPENAI_TTL_S: Final = 300.0


@dataclass(frozen=True, slots=True)
class _Block:
    chars: int
    key: bytes          # the hash of the prefix ending with this block
    ttl: str | None     # the block's breakpoint TTL, None when it is not a breakpoint


class PromptCache:
    """The fake's prompt caches: prefix hash -> (expiry, ttl); thread-safe."""

    def __init__(self, clock: Callable[[], float], min_tokens: int = 1024) -> None:
        self._clock = clock
        self.min_tokens = min_tokens
        self._lock = threading.Lock()
        self._entries: dict[bytes, tuple[float, float]] = {}

    def reset(self) -> None:
        with self._lock:
            self._entries.clear()

    def anthropic(self, body: JsonObject, model: str) -> CacheUsage | None:
        """The cache's part of a Messages request's usage; None without a breakpoint."""
        blocks = _anthropic_blocks(body, model)
        marked = [i for i, block in enumerate(blocks) if block.ttl is not None]
        if not marked:
            return None
        prefix = _prefix_tokens(blocks)
        with self._lock:
            now = self._clock()
            read_at = max((self._hit(blocks, i, now) for i in marked), default=-1)
            read = prefix[read_at] if read_at >= 0 else 0
            writes = {"5m": 0, "1h": 0}
            done = read
            for i in marked:
                block = blocks[i]
                assert block.ttl is not None
                if prefix[i] < self.min_tokens:
                    continue
                self._entries[block.key] = (now + TTL_S[block.ttl], TTL_S[block.ttl])
                if prefix[i] > done:
                    writes[block.ttl] += prefix[i] - done
                    done = prefix[i]
        total = sum(b.chars for b in blocks) // 4 + 1
        return CacheUsage(total, read, writes["5m"], writes["1h"])

    def _hit(self, blocks: list[_Block], breakpoint: int, now: float) -> int:
        """The last block within the lookback of `breakpoint` whose prefix is cached (its entry
        refreshed), else -1. Caller holds the lock."""
        for i in range(breakpoint, max(-1, breakpoint - LOOKBACK_BLOCKS), -1):
            entry = self._entries.get(blocks[i].key)
            if entry is not None and entry[0] > now:
                self._entries[blocks[i].key] = (now + entry[1], entry[1])
                return i
        return -1

    def openai(self, text: str, model: str) -> int | None:
        """Cached tokens of a chat prompt whose messages' texts are `text`; None below the
        minimum (OpenAI reports no cache details then, as far as the fake goes)."""
        if len(text) // 4 + 1 < OPENAI_MIN_TOKENS:
            return None
        digest = hashlib.sha256(f"openai\0{model}\0".encode())
        keys: list[tuple[int, bytes]] = []
        start = 0
        for tokens in range(OPENAI_MIN_TOKENS, len(text) // 4 + 1, OPENAI_STEP):
            digest.update(text[start:tokens * 4].encode())
            start = tokens * 4
            keys.append((tokens, digest.copy().digest()))
        with self._lock:
            now = self._clock()
            cached = max((t for t, key in keys if self._entries.get(key, (0.0, 0.0))[0] > now),
                         default=0)
            for _, key in keys:
                self._entries[key] = (now + OPENAI_TTL_S, OPENAI_TTL_S)
        return cached


def _prefix_tokens(blocks: list[_Block]) -> list[int]:
    out, chars = [], 0
    for block in blocks:
        chars += block.chars
        out.append(chars // 4)
    return out


def _anthropic_blocks(body: JsonObject, model: str) -> list[_Block]:
    """The request's blocks in cache order (tools, system, messages), each with its prefix's
    hash and its breakpoint's TTL."""
    items: list[Any] = []
    tools, system, messages = body.get("tools"), body.get("system"), body.get("messages")
    items.extend(tools if isinstance(tools, list) else ())
    if isinstance(system, str):
        items.append({"type": "text", "text": system})
    elif isinstance(system, list):
        items.extend(system)
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            items.append({"type": "text", "text": content, "role": message.get("role")})
        elif isinstance(content, list):
            items.extend({**b, "role": message.get("role")} if isinstance(b, dict) else b
                         for b in content)
    digest = hashlib.sha256(f"anthropic\0{model}\0".encode())
    blocks = []
    for item in items:
        plain = {k: v for k, v in item.items() if k != "cache_control"} \
            if isinstance(item, dict) else item
        canonical = json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest.update(canonical.encode() + b"\0")
        blocks.append(_Block(_chars(plain, canonical), digest.copy().digest(), _ttl(item)))
    return blocks


def _chars(block: Any, canonical: str) -> int:
    if isinstance(block, dict) and block.get("type") == "text":
        return len(text_of([block]))
    if isinstance(block, dict) and block.get("type") == "tool_result":
        return len(text_of(block.get("content")))
    return len(canonical)


def _ttl(item: Any) -> str | None:
    mark = item.get("cache_control") if isinstance(item, dict) else None
    if not isinstance(mark, dict):
        return None
    ttl = mark.get("ttl", "5m")
    return ttl if ttl in TTL_S else "5m"
