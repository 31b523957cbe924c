"""Gateway keys: hashed at rest (SHA-256), looked up by hash per request, never logged; reloadable
in place (SIGHUP: `llmroute serve`), so every holder of the ring sees the new keys at once."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence

from ..errors import AuthenticationError, ConfigError, ConfigProblem, PermissionDeniedError
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


def index_keys(keys: Sequence[KeyConfig], environ: Mapping[str, str]) -> dict[str, Principal]:
    """Each configured key's principal by its hash; ConfigError naming every bad entry (never a
    key's value: only the env var's name)."""
    by_hash: dict[str, Principal] = {}
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
        if digest in by_hash:
            problems.append(ConfigProblem(f"keys[{i}]", "the same key is configured twice"))
        by_hash[digest] = Principal(key.name, key.models, key.policies, key.team,
                                    admin=key.role == "admin")
    if problems:
        raise ConfigError(problems, "keys")
    return by_hash


class KeyRing:
    """The configured gateway keys, by hash. With no keys configured the gateway is open."""

    def __init__(self, keys: Sequence[KeyConfig], environ: Mapping[str, str]):
        self._by_hash = index_keys(keys, environ)

    def reload(self, keys: Sequence[KeyConfig], environ: Mapping[str, str]) -> None:
        """Replace the keys at once (one assignment: a request sees the old ring or the new one,
        and one already authenticated keeps its principal). On a ConfigError the old keys stay;
        a ring with keys never becomes open (that needs a restart)."""
        by_hash = index_keys(keys, environ)
        if not by_hash and self._by_hash:
            raise ConfigError([ConfigProblem("keys", "the new config has no keys: reloading it "
                                             "would open the gateway to everyone",
                                             "restart the gateway to serve it open")], "keys")
        self._by_hash = by_hash

    @property
    def open(self) -> bool:
        """True when no key is configured (every request is accepted)."""
        return not self._by_hash

    def hashes(self) -> list[str]:
        """Every key's hash (dashboard sessions are bound to one)."""
        return list(self._by_hash)

    def by_hash(self, digest: str) -> Principal | None:
        """The principal of the key with this hash, if it is configured."""
        return self._by_hash.get(digest)

    def principal(self, key: str | None) -> Principal:
        """The principal of a raw key; 401 when it is missing or unknown."""
        if self.open:
            return OPEN
        if key is None:
            raise AuthenticationError(
                "Missing API key: send `Authorization: Bearer <key>` or `x-api-key: <key>`.")
        # Constant time in what matters: the key is hashed first and the dict compares hashes, so
        # how long a lookup takes says nothing about how close a guess is to a real key (an
        # attacker does not choose the hash's bytes); the keys themselves are never compared.
        principal = self._by_hash.get(hash_key(key))
        if principal is None:
            raise AuthenticationError("Invalid API key.")
        return principal

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The principal of the request's key; 401 when it is missing or unknown."""
        return self.principal(None if self.open else bearer(headers))

    def admin(self, headers: Mapping[str, str]) -> Principal:
        """`authenticate`, then 403 unless the key has the admin role."""
        return require_admin(self.authenticate(headers))


def require_admin(principal: Principal) -> Principal:
    """The principal when it is an admin's, else 403."""
    if not principal.admin:
        raise PermissionDeniedError("This endpoint needs a gateway key with `role: admin`.",
                                    code="admin_required")
    return principal
