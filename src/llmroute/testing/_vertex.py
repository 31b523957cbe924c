"""Vertex AI in the fake upstream: an OAuth token endpoint that verifies a service account's
signed JWT assertion as Google's does (RS256 signature against the account's public key, the
audience, the expiry, the scope) and issues short-lived access tokens; and the Gemini wire at
Vertex's path, which accepts only an unexpired token (`Authorization: Bearer`), else 401
UNAUTHENTICATED. Needs `cryptography` (the `vertex` extra)."""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from llmroute.testing._gemini_wire import GeminiWire
from llmroute.testing._wire import JsonObject, dumps
from llmroute.testing.behaviours import Protocol

UNAUTHENTICATED = ("Request had invalid authentication credentials. Expected OAuth 2 access "
                   "token, login cookie or other valid authentication credential.")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenIssuer:
    """Service accounts the fake knows (email -> public key PEM) and the tokens it issued."""

    def __init__(self, clock: Callable[[], float] = time.time, ttl_s: float = 3600) -> None:
        self.clock = clock
        self.ttl_s = ttl_s
        self._accounts: dict[str, bytes] = {}
        self._tokens: dict[str, float] = {}
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self.issued = 0

    def reset(self, ttl_s: float = 3600) -> None:
        """Forget accounts and tokens; tokens live `ttl_s` again."""
        with self._lock:
            self._accounts.clear()
            self._tokens.clear()
            self.issued = 0
            self.ttl_s = ttl_s
            self._seq = itertools.count(1)

    def register(self, email: str, public_key_pem: bytes) -> None:
        with self._lock:
            self._accounts[email] = public_key_pem

    def exchange(self, form: Mapping[str, str], audience: str) -> tuple[int, JsonObject]:
        """(status, body) for a token request."""
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, {"error": "unsupported_grant_type", "error_description": "Invalid grant"}
        problem = self._check(form.get("assertion", ""), audience)
        if problem:
            return 400, {"error": "invalid_grant", "error_description": problem}
        token = f"ya29.fake-{next(self._seq)}"
        with self._lock:
            self._tokens[token] = self.clock() + self.ttl_s
            self.issued += 1
        return 200, {"access_token": token, "expires_in": int(self.ttl_s),
                     "token_type": "Bearer"}

    def mint(self, ttl_s: float, prefix: str = "entra-fake") -> tuple[str, float]:
        """A token valid `ttl_s` seconds and its expiry (the issuer's clock): what a test's
        Entra ID credential object hands out for the Azure routes to check."""
        with self._lock:
            token = f"{prefix}-{next(self._seq)}-{self.issued}"
            expires = self.clock() + ttl_s
            self._tokens[token] = expires
            self.issued += 1
        return token, expires

    def valid(self, authorization: str | None) -> bool:
        token = (authorization or "").removeprefix("Bearer ")
        with self._lock:
            expires = self._tokens.get(token)
        return expires is not None and self.clock() < expires

    def _check(self, jwt: str, audience: str) -> str | None:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        try:
            head, body, signature = jwt.split(".")
            header, claims = json.loads(_unb64(head)), json.loads(_unb64(body))
        except ValueError:
            return "Invalid JWT."
        pem = self._accounts.get(str(claims.get("iss")))
        if header.get("alg") != "RS256" or pem is None:
            return "Invalid JWT: unknown issuer or algorithm."
        key = serialization.load_pem_public_key(pem)
        assert isinstance(key, rsa.RSAPublicKey)
        try:
            key.verify(_unb64(signature), f"{head}.{body}".encode(), padding.PKCS1v15(),
                       hashes.SHA256())
        except InvalidSignature:
            return "Invalid JWT Signature."
        return self._claims_problem(claims, audience)

    def _claims_problem(self, claims: Mapping[str, Any], audience: str) -> str | None:
        now = self.clock()
        if claims.get("aud") != audience:
            return "Invalid JWT: audience."
        if not claims.get("iat", now + 1) <= now + 60 < claims.get("exp", 0) + 60:
            return "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe."
        if "cloud-platform" not in str(claims.get("scope", "")):
            return "Invalid OAuth scope."
        return None


class VertexWire(GeminiWire):
    """Gemini's wire as Vertex AI serves it; the route checks the token, not this."""

    name: Protocol = "vertex"

    def authorized(self, headers: Mapping[str, str], api_key: str) -> bool:
        return True

    def unauthenticated(self) -> tuple[int, bytes, dict[str, str]]:
        error = {"code": 401, "message": UNAUTHENTICATED, "status": "UNAUTHENTICATED"}
        return 401, dumps({"error": error}), {}
