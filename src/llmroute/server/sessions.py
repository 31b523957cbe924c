"""Dashboard sessions: a person logs in once with a gateway key and gets a short-lived cookie.

The cookie is `<id>.<expiry>.<key id>.<signature>`: a random id, the Unix time it expires, an HMAC of
the key's hash (so the cookie names no key, and a session dies when its key is rotated out) and an
HMAC-SHA256 of the rest. The signing secret comes from an environment variable that replicas share
(`server.session_secret_env`), so every replica accepts a session any of them issued; without it,
a random secret per process. A logout writes the id to the shared state (a counter that expires
with the session), which every replica reads before accepting a cookie: expiry and revocation are
the server's, never the browser's.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..control.state import Charge, SharedState
from ..outcome import Principal
from .auth import KeyRing

COOKIE = "llmroute_session"
_PREFIX = "dashboard-session-revoked:"
log = logging.getLogger("llmroute.server")


def session_secret(environ: Mapping[str, str], variable: str) -> bytes:
    """The signing key: derived from the shared secret in `variable`, else random (this process)."""
    shared = environ.get(variable)
    if not shared:
        return secrets.token_bytes(32)
    return hmac.new(shared.encode(), b"llmroute dashboard sessions", hashlib.sha256).digest()


@dataclass(frozen=True)
class Session:
    """A valid session: its id, when it expires (Unix seconds) and whose it is."""

    id: str
    expires: int
    principal: Principal


class Sessions:
    """Issues, checks and revokes dashboard session cookies."""

    def __init__(self, secret: bytes, ttl_s: float, state: SharedState,
                 clock: Callable[[], float] = time.time):
        self._secret = secret
        self.ttl_s = ttl_s
        self._state = state
        self._clock = clock
        self._key_ids: dict[str, str] = {}  # key hash -> its id in cookies (an HMAC: memoized)
        self._hashes: dict[str, str] = {}   # and back

    def _sign(self, text: str) -> str:
        return hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()

    def _key_id(self, digest: str) -> str:
        found = self._key_ids.get(digest)
        if found is None:
            found = self._key_ids[digest] = self._sign("key:" + digest)[:32]
        return found

    def issue(self, key_hash: str) -> str:
        """A new session cookie's value for the key with this hash."""
        # rounded up: a session lives at least its ttl (rounded down, a 1-s ttl could last 1 ms)
        expires = math.ceil(self._clock() + self.ttl_s)
        body = f"{secrets.token_urlsafe(18)}.{expires}.{self._key_id(key_hash)}"
        return f"{body}.{self._sign(body)}"

    async def check(self, cookie: str | None, keys: KeyRing) -> Session | None:
        """The session of a cookie that is well signed, unexpired, not logged out and whose key is
        still configured; else None."""
        parts = (cookie or "").split(".")
        if len(parts) != 4 or not parts[1].isdigit():
            return None
        sid, expires, key_id, signature = parts
        if not hmac.compare_digest(signature, self._sign(f"{sid}.{expires}.{key_id}")):
            return None
        if int(expires) <= self._clock():
            return None
        principal = keys.by_hash(self._hash_of(key_id, keys))
        if principal is None:
            return None
        [revoked] = await self._state.read([_PREFIX + sid])
        return None if revoked else Session(sid, int(expires), principal)

    def _hash_of(self, key_id: str, keys: KeyRing) -> str:
        """The hash of the key a (well signed, so our own) key id names; "" when no configured
        key has it (it was rotated out)."""
        if key_id not in self._hashes:
            self._hashes.update((self._key_id(digest), digest) for digest in keys.hashes())
        return self._hashes.get(key_id, "")

    async def revoke(self, session: Session) -> None:
        """Log a session out on every replica (until it would have expired anyway)."""
        left = max(1.0, session.expires - self._clock())
        await self._state.adjust([Charge(_PREFIX + session.id, 1, None, left)])
