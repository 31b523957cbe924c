"""Bedrock credentials from botocore's chain, end to end: the openai SDK → a served gateway → the
fake Bedrock, which verifies every SigV4 signature with its own (non-botocore) verifier. Profiles
from temporary AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE, a `credential_process` issuing
short-lived credentials (each refresh seen at the fake), the refresh kept off the event loop, and
a wrong secret: the fake's 403 as an OpenAI-style auth error naming no secret anywhere."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import openai
import pytest

from llmroute.providers.bedrock import BedrockProvider
from llmroute.settings import ProviderConfig
from llmroute.testing._bedrock_wire import FAKE_AWS_CREDENTIALS
from llmroute.testing.upstream import FakeUpstream

from .support import Serve, assert_openai_error, user
from .test_bedrock import HAIKU, MODEL, bedrock_requests
from .test_ledger import ledger_config, wait_for_entries

KEY_ID, SECRET = FAKE_AWS_CREDENTIALS.access_key_id, FAKE_AWS_CREDENTIALS.secret_access_key
WRONG_SECRET = "wrong/secret+Key-0123456789abcdefXYZ"
# A credential_process: each run issues a new session token that expires in `lifetime` seconds
# (under botocore's refresh window, so every use refreshes), after sleeping `delay` seconds; it
# appends each token to `issued` so the test knows what was handed out.
PROCESS = """\
import json, sys, time
from datetime import datetime, timedelta, timezone
issued, lifetime, delay = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
time.sleep(delay)
with open(issued, "a+") as f:
    f.seek(0)
    token = f"session-token-{len(f.readlines()) + 1}-abcdefgh"
    f.write(token + "\\n")
expires = datetime.now(timezone.utc) + timedelta(seconds=lifetime)
print(json.dumps({"Version": 1, "AccessKeyId": KEY_ID, "SecretAccessKey": SECRET,
                  "SessionToken": token, "Expiration": expires.isoformat()}))
""".replace("KEY_ID", repr(KEY_ID)).replace("SECRET", repr(SECRET))


def aws_files(tmp_path: Path, credentials: str, config: str) -> dict[str, str]:
    """An environment whose shared credentials and config files are these (and no keys)."""
    (tmp_path / "credentials").write_text(credentials, encoding="utf-8")
    (tmp_path / "config").write_text(config, encoding="utf-8")
    return {"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
            "AWS_CONFIG_FILE": str(tmp_path / "config")}


def process_profile(tmp_path: Path, lifetime_s: float = 120, delay_s: float = 0) -> dict[str, str]:
    """Files with a `proc` profile whose credentials come from the PROCESS script."""
    script = tmp_path / "issue.py"
    script.write_text(PROCESS, encoding="utf-8")
    command = f"{sys.executable} {script} {tmp_path / 'issued'} {lifetime_s} {delay_s}"
    return aws_files(tmp_path, "", f"[profile proc]\nregion = us-east-1\n"
                                   f"credential_process = {command}\n")


def issued(tmp_path: Path) -> list[str]:
    path = tmp_path / "issued"
    return path.read_text(encoding="utf-8").split() if path.exists() else []


def provider_entry(up: FakeUpstream, **extra: Any) -> dict[str, Any]:
    return {"providers": {"bedrock": {"type": "bedrock", "base_url": up.base_url,
                                      "timeout": {"connect_s": 2, "first_byte_s": 5,
                                                  "total_s": 10}, **extra}},
            "models": {MODEL: {}}}


def test_a_profile_in_the_shared_files_signs_with_its_keys_and_region(
        serve: Serve, up: FakeUpstream, tmp_path: Path) -> None:
    env = aws_files(tmp_path, f"[team]\naws_access_key_id = {KEY_ID}\n"
                              f"aws_secret_access_key = {SECRET}\n",
                    "[profile team]\nregion = eu-west-3\n")
    # the environment's keys are wrong: a profile named in config wins over them, as in botocore
    gw = serve(provider_entry(up, profile="team"),
               environ={**env, "AWS_ACCESS_KEY_ID": "AKIDWRONG", "AWS_SECRET_ACCESS_KEY": "x"})
    with gw.client() as client:
        resp = client.chat.completions.create(model=MODEL, messages=user("hi"))

    assert resp.choices[0].message.content == f"echo from {HAIKU}: hi"
    (sent,) = bedrock_requests(up)
    assert sent.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={KEY_ID}/")
    assert "/eu-west-3/bedrock/aws4_request" in sent.headers["authorization"]


def test_credential_process_credentials_are_refreshed_when_they_expire(
        serve: Serve, up: FakeUpstream, tmp_path: Path) -> None:
    gw = serve(provider_entry(up, profile="proc"), environ=process_profile(tmp_path))
    with gw.client() as client:
        for text in ("one", "two", "three"):
            resp = client.chat.completions.create(model=MODEL, messages=user(text))
            assert resp.choices[0].message.content == f"echo from {HAIKU}: {text}"

    tokens = [r.headers["x-amz-security-token"] for r in bedrock_requests(up)]
    assert len(set(tokens)) == 3  # each request signed with freshly refreshed credentials
    assert set(tokens) <= set(issued(tmp_path))  # ... that the process issued
    assert all("x-amz-security-token" in r.headers["authorization"]
               for r in bedrock_requests(up))


def test_long_lived_process_credentials_are_fetched_once(serve: Serve, up: FakeUpstream,
                                                          tmp_path: Path) -> None:
    gw = serve(provider_entry(up, profile="proc"),
               environ=process_profile(tmp_path, lifetime_s=3600))
    with gw.client() as client:
        for _ in range(3):
            client.chat.completions.create(model=MODEL, messages=user("hi"))

    assert len(issued(tmp_path)) == 1
    assert {r.headers["x-amz-security-token"] for r in bedrock_requests(up)} == set(
        issued(tmp_path))


def test_a_slow_refresh_does_not_block_the_event_loop(up: FakeUpstream, tmp_path: Path) -> None:
    config = ProviderConfig.model_validate(provider_entry(up, profile="proc")["providers"]
                                           ["bedrock"])
    provider = BedrockProvider("bedrock", config, process_profile(tmp_path, delay_s=0.6))

    async def main() -> tuple[float, float]:
        gaps: list[float] = []

        async def tick() -> None:
            while True:
                before = time.perf_counter()
                await asyncio.sleep(0.01)
                gaps.append(time.perf_counter() - before)

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0.05)  # the ticker is running (sleeping) before the request starts
        started = time.perf_counter()
        answer = await provider.complete({"messages": user("hi")}, HAIKU)
        took = time.perf_counter() - started
        ticker.cancel()
        await provider.aclose()
        assert answer["choices"][0]["message"]["content"] == f"echo from {HAIKU}: hi"
        return took, max(gaps)

    took, worst_gap = asyncio.run(main())
    assert took >= 1.2  # the process ran twice (load, then the mandatory refresh), 0.6 s each
    assert worst_gap < 0.3  # ... while the loop kept turning


def test_a_wrong_secret_is_an_openai_auth_error_and_the_secret_is_nowhere(
        serve: Serve, up: FakeUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = aws_files(tmp_path, f"[default]\naws_access_key_id = {KEY_ID}\n"
                              f"aws_secret_access_key = {WRONG_SECRET}\n", "")
    gw = serve({**provider_entry(up, region="us-east-1"), **ledger_config(tmp_path)},
               environ=env)
    with gw.client() as client, pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=MODEL, messages=user("hi"))

    error = assert_openai_error(caught.value.body and {"error": caught.value.body})
    assert caught.value.status_code == 502
    assert [a["error"] for a in error["attempts"]] == ["auth"]
    assert "InvalidSignatureException" in error["message"]
    assert len(bedrock_requests(up)) == 1  # the fake refused it; auth errors are not retried
    (entry,) = wait_for_entries(tmp_path, 1)
    ledger_bytes = b"".join(p.read_bytes() for p in tmp_path.glob("ledger.db*"))
    for secret in (WRONG_SECRET, SECRET):
        assert secret not in json.dumps(caught.value.body)
        assert secret not in caplog.text
        assert secret.encode() not in ledger_bytes
        assert secret not in repr(entry)
