"""OAuth access tokens for a Google service account (Vertex AI), without google-auth: a JWT
assertion signed RS256 with the account's private key (the `vertex` extra's `cryptography`),
exchanged at the account's `token_uri` (grant type jwt-bearer) for an access token, which is
kept until five minutes before it expires and then fetched again on the next request."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import orjson

from ..errors import UpstreamError
from ..settings import ProviderConfig
from .http import TRANSPORT_ERRORS, HTTPTransport, transport_error

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LIFETIME_S = 3600
REFRESH_EARLY_S = 300


@dataclass(frozen=True)
class ServiceAccount:
    """The parts of a service-account key file the token exchange needs."""

    email: str
    private_key_pem: str
    token_uri: str
    key_id: str = ""

    def __repr__(self) -> str:  # never print the key
        return f"ServiceAccount({self.email!r})"


def load_service_account(path: str) -> ServiceAccount:
    """Read a service-account JSON key file; ValueError when it is not one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the service-account file: {type(exc).__name__}") from None
    if not isinstance(data, dict) or data.get("type") != "service_account":
        raise ValueError("the file is not a service-account key (type: service_account)")
    try:
        return ServiceAccount(str(data["client_email"]), str(data["private_key"]),
                              str(data.get("token_uri") or "https://oauth2.googleapis.com/token"),
                              str(data.get("private_key_id") or ""))
    except KeyError as exc:
        raise ValueError(f"the service-account file has no {exc.args[0]}") from None


def _b64(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def assertion(account: ServiceAccount, now: float) -> str:
    """The signed JWT the token endpoint exchanges for an access token."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = serialization.load_pem_private_key(account.private_key_pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the service-account key is not an RSA key")
    header = {"alg": "RS256", "typ": "JWT", **({"kid": account.key_id} if account.key_id else {})}
    claims = {"iss": account.email, "scope": SCOPE, "aud": account.token_uri,
              "iat": int(now), "exp": int(now) + LIFETIME_S}
    signing_input = _b64(orjson.dumps(header)) + b"." + _b64(orjson.dumps(claims))
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return (signing_input + b"." + _b64(signature)).decode()


class TokenSource:
    """One service account's access token, fetched when missing or about to expire."""

    def __init__(self, name: str, config: ProviderConfig, account: ServiceAccount,
                 clock: Callable[[], float] = time.time):
        self.name = name
        self.account = account
        self.clock = clock
        self.http = HTTPTransport(config.model_copy(update={"base_url": account.token_uri,
                                                           "headers": {}}), {})
        self._token: str | None = None
        self._expires = 0.0

    async def token(self, model: str) -> str:
        """A valid access token (fetching one if needed); UpstreamError `auth` when refused."""
        now = self.clock()
        if self._token is None or now >= self._expires - REFRESH_EARLY_S:
            self._token, lifetime = await self._fetch(model, now)
            self._expires = now + lifetime
        return self._token

    async def _fetch(self, model: str, now: float) -> tuple[str, float]:
        form = urlencode({"grant_type": GRANT, "assertion": assertion(self.account, now)})
        try:
            reply = await self.http.post("", form.encode(),
                                         {"content-type": "application/x-www-form-urlencoded"})
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, self.name, model) from None
        try:
            body = orjson.loads(reply.content)
        except orjson.JSONDecodeError:
            body = {}
        if reply.status >= 400 or not isinstance(body, dict) or "access_token" not in body:
            why = body.get("error_description") or body.get("error") if isinstance(body, dict) \
                else None
            raise UpstreamError("auth", f"{self.name}: the token endpoint refused the service "
                                f"account ({reply.status}: {why or 'no access_token'})",
                                status=reply.status, provider=self.name, model=model)
        return str(body["access_token"]), float(body.get("expires_in") or LIFETIME_S)

    async def aclose(self) -> None:
        await self.http.aclose()
