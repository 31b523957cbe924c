"""Gateway keys: hashed at rest (SHA-256), checked in constant time per request, never logged."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence

from ..errors import AuthenticationError, ConfigError, ConfigProblem
from ..outcome import OPEN, Principal
from ..settings import KeyConfig

KEY_PREFIX = "lr-"


def hash_key(key: str) -> str:
    """`sha256:<hex>` of a key: what config and stores keep instead of the key."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh random gateway key."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def bearer(headers: Mapping[str, str]) -> str | None:
    """The key from `Authorization: Bearer …` (or `x-api-key`, as Anthropic-style clients send)."""
    value = headers.get("authorization")
    if value:
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return headers.get("x-api-key") or None


class KeyRing:
    """The configured gateway keys, by hash. With no keys configured the gateway is open."""

    def __init__(self, keys: Sequence[KeyConfig], environ: Mapping[str, str]):
        self._by_hash: dict[str, Principal] = {}
        problems: list[ConfigProblem] = []
        for i, key in enumerate(keys):
            digest = key.hash
            if digest is None and key.key_env:
                value = environ.get(key.key_env)
                digest = hash_key(value) if value else None
                if digest is None:
                    problems.append(ConfigProblem(f"keys[{i}].key_env",
                                                  f"env var {key.key_env} is not set"))
            if digest is None:
                if not key.key_env:
                    problems.append(ConfigProblem(f"keys[{i}]", "a key needs `hash` or `key_env`",
                                                  "`llmroute keys new` prints both"))
                continue
            self._by_hash[digest] = Principal(key.name, key.models, key.policies, key.team)
        if problems:
            raise ConfigError(problems, "keys")

    @property
    def open(self) -> bool:
        """True when no key is configured (every request is accepted)."""
        return not self._by_hash

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The principal of the request's key; 401 when it is missing or unknown."""
        if self.open:
            return OPEN
        key = bearer(headers)
        if key is None:
            raise AuthenticationError("Missing API key: send `Authorization: Bearer <key>`.")
        # Looking up the SHA-256 of the key leaks nothing about the key through timing.
        principal = self._by_hash.get(hash_key(key))
        if principal is None:
            raise AuthenticationError("Invalid API key.")
        return principal
