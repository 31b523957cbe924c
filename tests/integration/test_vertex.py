"""Vertex AI end to end: the gateway signs a service-account JWT, exchanges it at the token
endpoint (the fake verifies the RS256 signature against the account's public key, the audience,
expiry and scope), calls Gemini's wire at Vertex's path with the access token, reuses the token
and fetches a new one before it expires. Needs the `vertex` extra (cryptography)."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from llmroute.testing.behaviours import Error
from llmroute.testing.upstream import FakeUpstream

from .support import Serve, assert_openai_error, user

pytest.importorskip("cryptography")
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

MODEL = "vertex/gemini-2.5-flash"
EMAIL = "gateway@proj-1.iam.gserviceaccount.com"
PREFIX = "/v1/projects/proj-1/locations/us-central1/publishers/google"


def key_file(tmp_path: Path, up: FakeUpstream, register: bool = True) -> str:
    """A new service-account key file whose token_uri is the fake's; its public key registered."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    if register:
        up.tokens.register(EMAIL, key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    path = tmp_path / "sa.json"
    path.write_text(json.dumps({"type": "service_account", "project_id": "proj-1",
                                "private_key_id": "k1", "private_key": pem,
                                "client_email": EMAIL, "token_uri": up.base_url + "/token"}))
    return str(path)


def config(up: FakeUpstream) -> dict[str, Any]:
    return {"providers": {"vertex": {"type": "vertex", "base_url": up.base_url + PREFIX,
                                     "api_key_env": "VERTEX_SA"}},
            "models": {MODEL: {"deployment": "vertex"}}}


def test_vertex_completion_and_stream_with_a_service_account(serve: Serve, up: FakeUpstream,
                                                             tmp_path: Path) -> None:
    gw = serve(config(up), environ={"VERTEX_SA": key_file(tmp_path, up)})
    with gw.client() as client:
        raw = client.chat.completions.with_raw_response.create(model=MODEL,
                                                               messages=user("hello"))
        chunks = list(client.chat.completions.create(model=MODEL, messages=user("a b"),
                                                     stream=True))
    resp = raw.parse()
    assert resp.model == MODEL
    assert resp.choices[0].message.content == "echo from gemini-2.5-flash: hello"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
        "echo from gemini-2.5-flash: a b"
    first, second = up.requests
    assert first.path == PREFIX + "/models/gemini-2.5-flash:generateContent"
    assert second.path == PREFIX + "/models/gemini-2.5-flash:streamGenerateContent"
    assert first.headers["authorization"].startswith("Bearer ya29.fake-")
    assert first.headers["authorization"] == second.headers["authorization"]  # reused
    assert up.tokens.issued == 1
    assert "x-goog-api-key" not in first.headers
    # priced as LiteLLM prices Vertex's gemini-2.5-flash
    usage = resp.usage
    assert Decimal(raw.headers["x-llmroute-cost-usd"]) == (
        usage.prompt_tokens * Decimal("3e-7") + usage.completion_tokens * Decimal("2.5e-6"))


def test_the_token_is_fetched_again_before_it_expires(serve: Serve, up: FakeUpstream,
                                                      tmp_path: Path) -> None:
    up.tokens.ttl_s = 301  # the gateway refreshes 300 s early: this token serves for 1 s
    gw = serve(config(up), environ={"VERTEX_SA": key_file(tmp_path, up)})
    with gw.client() as client:
        client.chat.completions.create(model=MODEL, messages=user("one"))
        client.chat.completions.create(model=MODEL, messages=user("two"))
        assert up.tokens.issued == 1
        time.sleep(1.1)
        client.chat.completions.create(model=MODEL, messages=user("three"))
    assert up.tokens.issued == 2
    tokens = [r.headers["authorization"] for r in up.requests]
    assert tokens[0] == tokens[1] != tokens[2]


def test_an_access_token_the_upstream_echoes_is_scrubbed(serve: Serve, up: FakeUpstream,
                                                         tmp_path: Path) -> None:
    up.set_default("gemini-2.5-flash", Error(500, "bad credential Bearer ya29.fake-1", "INTERNAL"))
    gw = serve(config(up), environ={"VERTEX_SA": key_file(tmp_path, up)})
    with gw.client() as client, pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=MODEL, messages=user("hi"))
    assert up.requests[0].headers["authorization"] == "Bearer ya29.fake-1"
    text = json.dumps(caught.value.body)
    assert "ya29.fake-1" not in text and "[redacted]" in text


def test_an_unknown_service_account_is_an_auth_error(serve: Serve, up: FakeUpstream,
                                                     tmp_path: Path) -> None:
    gw = serve(config(up), environ={"VERTEX_SA": key_file(tmp_path, up, register=False)})
    with gw.client() as client, pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=MODEL, messages=user("hi"))
    error = assert_openai_error({"error": caught.value.body})
    assert [a["error"] for a in error["attempts"]] == ["auth"]
    assert "token endpoint refused" in error["attempts"][0]["message"]
    assert up.requests == []  # never reached the model
    assert "PRIVATE KEY" not in json.dumps(caught.value.body)


def test_a_missing_key_file_is_an_auth_error_not_a_crash(serve: Serve, up: FakeUpstream,
                                                         tmp_path: Path) -> None:
    gw = serve(config(up), environ={"VERTEX_SA": str(tmp_path / "nope.json")})
    with gw.client() as client, pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=MODEL, messages=user("hi"))
    error = assert_openai_error({"error": caught.value.body})
    assert [a["error"] for a in error["attempts"]] == ["auth"]
    assert "service-account file" in error["attempts"][0]["message"]


def test_a_request_without_a_valid_token_is_refused_by_the_fake(up: FakeUpstream) -> None:
    reply = httpx.post(up.base_url + PREFIX + "/models/gemini-2.5-flash:generateContent",
                       headers={"authorization": "Bearer ya29.forged"},
                       json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
    assert reply.status_code == 401 and reply.json()["error"]["status"] == "UNAUTHENTICATED"
