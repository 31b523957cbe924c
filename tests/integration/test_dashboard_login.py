"""Dashboard login through the real server: a key exchanged once for a session cookie (HttpOnly,
SameSite=Strict, path /dashboard, Secure over https), checked against cross-site forgery, expiring
and revocable on the server, accepted by every replica sharing the secret and the Redis state; and
what each role sees in /dashboard/data (an application key: only its own requests and budgets)."""

from __future__ import annotations

import time
import uuid
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmroute.server.auth import hash_key
from llmroute.server.sessions import COOKIE

from .control_support import REDIS_URL
from .support import GatewayServer, Serve, assert_openai_error, user
from .test_ledger import ledger_config, wait_for_entries

ADMIN, APP, OTHER = "lr-admin-key-4d1c", "lr-app-key-9e2b", "lr-other-app-key-77aa"
KEYS: dict[str, Any] = {"keys": [
    {"name": "ops", "hash": hash_key(ADMIN), "role": "admin"},
    {"name": "shop", "hash": hash_key(APP), "limits": [{"window": "day", "usd": "5"}]},
    {"name": "billing-bot", "hash": hash_key(OTHER)},
]}


def login(http: httpx.Client, key: str, origin: str | None, **headers: str) -> httpx.Response:
    """POST the login form as a browser on `origin` would."""
    sent = {"origin": origin, **headers} if origin else dict(headers)
    return http.post("/dashboard/login", data={"key": key}, headers=sent, follow_redirects=False)


def cookie_of(response: httpx.Response) -> tuple[str, dict[str, str | bool]]:
    """The session cookie's value and attributes from Set-Cookie."""
    jar = SimpleCookie()
    jar.load(response.headers["set-cookie"])
    morsel = jar[COOKIE]
    return morsel.value, {k: morsel[k] for k in ("path", "httponly", "samesite", "secure",
                                                  "max-age")}


def jar(cookie: str) -> dict[str, str]:
    """The Cookie header a browser sends back."""
    return {"cookie": f"{COOKIE}={cookie}"}


def data(gw: GatewayServer, cookie: str) -> httpx.Response:
    with gw.http() as http:
        return http.get("/dashboard/data", params={"since": "1h"}, headers=jar(cookie))


def test_login_sets_a_strict_http_only_session_cookie(serve: Serve, tmp_path: Path) -> None:
    gw = serve({**KEYS, **ledger_config(tmp_path), "server": {"session_ttl_s": 600}})
    with gw.http() as http:
        answer = login(http, ADMIN, gw.url)
        assert answer.status_code == 303 and answer.headers["location"] == "../dashboard"
        value, attributes = cookie_of(answer)
        assert attributes == {"path": "/dashboard", "httponly": True, "samesite": "strict",
                              "secure": "", "max-age": "600"}
        # the cookie names neither the key nor its hash
        assert ADMIN not in value and hash_key(ADMIN).split(":")[1] not in value
        page = http.get("/dashboard", headers=jar(value))
        assert page.status_code == 200 and 'id="logout"' in page.text and "<script>" in page.text
        assert http.get("/dashboard/data", headers=jar(value)).status_code == 200
        # over https (the proxy says so), the cookie is Secure
        https = login(http, ADMIN, "https://" + gw.url.split("://")[1],
                      **{"x-forwarded-proto": "https"})
        assert https.status_code == 303 and cookie_of(https)[1]["secure"] is True


def test_a_wrong_key_gets_the_form_again_and_no_cookie(serve: Serve) -> None:
    gw = serve(KEYS)
    with gw.http() as http:
        for key in ("lr-wrong", ""):
            answer = login(http, key, gw.url)
            assert answer.status_code == 401 and "set-cookie" not in answer.headers
            assert "That key is not valid." in answer.text and 'action="login"' in answer.text


def test_forged_sessions_are_refused(serve: Serve, tmp_path: Path) -> None:
    gw = serve({**KEYS, **ledger_config(tmp_path)})
    with gw.http() as http:
        value, _ = cookie_of(login(http, APP, gw.url))
    sid, expires, key_id, signature = value.split(".")
    later = str(int(expires) + 86400)
    for forged in (f"{sid}.{later}.{key_id}.{signature}",       # a longer life
                   f"{sid}.{expires}.{key_id}.{'0' * 64}",      # a made-up signature
                   f"{sid}.{expires}.{key_id}", "garbage", ""):
        answer = data(gw, forged)
        assert answer.status_code == 401, forged
        assert assert_openai_error(answer.json())["type"] == "authentication_error"


@pytest.mark.parametrize("headers", [
    {"origin": "https://evil.example"}, {"origin": "null"},
    {"referer": "https://evil.example/dashboard"}, {}], ids=["origin", "null", "referer", "none"])
def test_cross_site_posts_are_refused(serve: Serve, headers: dict[str, str]) -> None:
    gw = serve(KEYS)
    with gw.http() as http:
        answer = http.post("/dashboard/login", data={"key": ADMIN}, headers=headers,
                           follow_redirects=False)
        assert answer.status_code == 403 and "set-cookie" not in answer.headers
        assert assert_openai_error(answer.json())["code"] == "cross_site_request"
        value, _ = cookie_of(login(http, ADMIN, gw.url))
        out = http.post("/dashboard/logout", headers={**headers, **jar(value)},
                        follow_redirects=False)
        assert out.status_code == 403
        assert http.get("/dashboard/data", headers=jar(value)).status_code != 401
        # the same page's own Referer (no Origin) is accepted
        ok = http.post("/dashboard/login", data={"key": ADMIN}, follow_redirects=False,
                       headers={"referer": gw.url + "/dashboard"})
        assert ok.status_code == 303


def test_logout_revokes_the_session_on_the_server(serve: Serve, tmp_path: Path) -> None:
    gw = serve({**KEYS, **ledger_config(tmp_path)})
    with gw.http() as http:
        value, _ = cookie_of(login(http, ADMIN, gw.url))
        assert data(gw, value).status_code == 200
        out = http.post("/dashboard/logout", headers={"origin": gw.url, **jar(value)}, follow_redirects=False)
        assert out.status_code == 303 and f"{COOKIE}=" in out.headers["set-cookie"]
    # a copy of the cookie kept by anyone is dead too
    assert data(gw, value).status_code == 401


def test_a_session_expires_on_the_server(serve: Serve, tmp_path: Path) -> None:
    gw = serve({**KEYS, **ledger_config(tmp_path), "server": {"session_ttl_s": 2}})
    with gw.http() as http:
        before = time.time()
        value, _ = cookie_of(login(http, ADMIN, gw.url))
    expires = int(value.split(".")[1])
    assert expires >= before + 2  # it lives at least its ttl, however slow the machine
    assert data(gw, value).status_code == 200
    time.sleep(max(0.0, expires - time.time()) + 0.1)
    assert data(gw, value).status_code == 401


def test_a_session_dies_with_its_key(serve: Serve, tmp_path: Path) -> None:
    from llmroute.settings import KeyConfig

    gw = serve({**KEYS, **ledger_config(tmp_path)})
    with gw.http() as http:
        value, _ = cookie_of(login(http, APP, gw.url))
    assert data(gw, value).status_code == 200
    gw.app.state.keys.reload([KeyConfig(name="ops", hash=hash_key(ADMIN), role="admin")], {})
    assert data(gw, value).status_code == 401


def test_replicas_share_sessions_and_logouts(serve: Serve, tmp_path: Path) -> None:
    # two gateways, one Redis state and one secret: a session from one works on the other, and a
    # logout on one ends it on both
    state = {"state": {"url": REDIS_URL, "prefix": f"llmroute-test-{uuid.uuid4().hex[:8]}:"}}
    env = {"LLMROUTE_SESSION_SECRET": "a-secret-the-replicas-share"}
    one = serve({**KEYS, **ledger_config(tmp_path), **state}, environ=env)
    two = serve({**KEYS, **ledger_config(tmp_path), **state}, environ=env)
    alone = serve({**KEYS, **ledger_config(tmp_path), **state})  # a secret of its own
    with one.http() as http:
        value, _ = cookie_of(login(http, ADMIN, one.url))
    assert data(two, value).status_code == 200
    assert data(alone, value).status_code == 401
    with two.http() as http:
        out = http.post("/dashboard/logout", headers={"origin": two.url, **jar(value)},
                        follow_redirects=False)
        assert out.status_code == 303
    assert data(one, value).status_code == 401


def test_an_app_key_sees_only_its_own_requests(serve: Serve, tmp_path: Path) -> None:
    gw = serve({**KEYS, **ledger_config(tmp_path)})
    for key, models in ((APP, ["fake/mini", "fake/mini"]), (OTHER, ["fake/big"]),
                        (ADMIN, ["fake/mid"])):
        with gw.client(key) as client:
            for model in models:
                client.chat.completions.create(model=model, messages=user("count me"))
    wait_for_entries(tmp_path, 4)
    with gw.http() as http:
        sessions = {key: cookie_of(login(http, key, gw.url))[0] for key in (APP, ADMIN)}
    own = data(gw, sessions[APP])
    assert own.status_code == 200, own.text
    body = own.json()
    assert body["role"] == "app" and body["total"]["requests"] == 2
    assert {m["model"]: m["requests"] for m in body["total"]["model_mix"]} == {"fake/mini": 2}
    assert body["experiments"] == [] and body["alerts"] == []
    assert [(b["scope"], b["subject"], b["limit"]) for b in body["budgets"]] == [
        ("key", "shop", "5")]
    for name in ("billing-bot", '"ops"', "team"):  # no other key's name, anywhere
        assert name not in own.text, (name, own.text)
    assert not any(g["label"] == "fake/big" for g in body["groups"])
    with gw.http() as http:  # the same through a bearer key (a script)
        scripted = http.get("/dashboard/data", params={"since": "1h"},
                            headers={"authorization": f"Bearer {APP}"}).json()
    assert scripted["total"] == body["total"]
    everything = data(gw, sessions[ADMIN]).json()
    assert everything["role"] == "admin" and everything["total"]["requests"] == 4
    assert {m["model"] for m in everything["total"]["model_mix"]} == {
        "fake/mini", "fake/big", "fake/mid"}
