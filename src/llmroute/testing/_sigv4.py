"""The fake Bedrock's SigV4 verifier, in plain Python and independent of botocore (which signs
the gateway's requests, `providers/aws_auth.py`): the verifier is the check, so it must not share
code with what it checks. SigV4 as AWS documents it
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv4-create-signed-request.html):
the canonical request, the string to sign, the derived key and the `Authorization` header. The
unit tests check it against AWS's documented example and signatures botocore computed.
"""

from __future__ import annotations

import hashlib
import hmac
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

ALGORITHM = "AWS4-HMAC-SHA256"


@dataclass(frozen=True)
class Credentials:
    """An access key pair, and the session token of temporary credentials."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:  # never print the secret
        return f"Credentials(access_key_id={self.access_key_id!r}, secret_access_key=<hidden>)"


@dataclass(frozen=True)
class Scope:
    """Where a signature is valid: a day, a region and a service."""

    date: str       # YYYYMMDD
    region: str
    service: str

    def __str__(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


def amz_date(now: datetime) -> str:
    """`x-amz-date`'s format (basic ISO 8601, UTC)."""
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def canonical_uri(raw_path: str) -> str:
    """The path as signed: each segment of the (already encoded) path encoded again, as every
    service but S3 expects."""
    return urllib.parse.quote(raw_path or "/", safe="/~")


def canonical_query(query: str) -> str:
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    encoded = sorted((urllib.parse.quote(k, safe="-_.~"), urllib.parse.quote(v, safe="-_.~"))
                     for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def canonical_request(method: str, raw_path: str, query: str, headers: Mapping[str, str],
                      signed: list[str], payload: bytes) -> str:
    """The canonical request over the `signed` header names (lower case, sorted)."""
    lowered = {k.lower(): " ".join(v.strip().split()) for k, v in headers.items()}
    head = "".join(f"{name}:{lowered.get(name, '')}\n" for name in signed)
    return "\n".join([method.upper(), canonical_uri(raw_path), canonical_query(query), head,
                      ";".join(signed), hashlib.sha256(payload).hexdigest()])


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signature(secret: str, scope: Scope, stamp: str, canonical: str) -> str:
    """The hex signature of `canonical` at `stamp` (x-amz-date) under `scope`."""
    key = _hmac(("AWS4" + secret).encode(), scope.date)
    for part in (scope.region, scope.service, "aws4_request"):
        key = _hmac(key, part)
    to_sign = "\n".join([ALGORITHM, stamp, str(scope),
                         hashlib.sha256(canonical.encode()).hexdigest()])
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Authorization:
    """A parsed `Authorization: AWS4-HMAC-SHA256 ...` header."""

    access_key_id: str
    scope: Scope
    signed: list[str]
    signature: str


def parse_authorization(value: str) -> Authorization | None:
    """The parts of a SigV4 `Authorization` header; None when it is not one."""
    algorithm, _, rest = value.partition(" ")
    if algorithm != ALGORITHM:
        return None
    fields = dict(part.strip().partition("=")[::2] for part in rest.split(","))
    credential = fields.get("Credential", "").split("/")
    if len(credential) != 5 or credential[4] != "aws4_request" or not fields.get("Signature"):
        return None
    return Authorization(credential[0], Scope(credential[1], credential[2], credential[3]),
                         fields.get("SignedHeaders", "").split(";"), fields["Signature"])
