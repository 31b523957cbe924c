"""Gateway keys (hashed in config, or read from an env var), per-key allow-lists, and the upstream API
key: it reaches the upstream and never appears in anything the gateway sends back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from llmroute.server.auth import hash_key
from llmroute.testing.behaviours import (
    CutStream,
    ErrorMidStream,
    bad_request,
    rate_limited,
    server_error,
    unauthorized,
)
from llmroute.testing.upstream import FakeUpstream

from .support import UPSTREAM_KEY, GatewayServer, Serve, assert_openai_error, upstream_models, user

FULL_KEY = "lr-full-access-key"
ENV_KEY = "lr-key-from-the-environment"
LIMITED_KEY = "lr-limited-key"
KEYS: dict[str, Any] = {"keys": [
    {"name": "full", "hash": hash_key(FULL_KEY)},
    {"name": "from-env", "key_env": "GATEWAY_KEY"},
    {"name": "limited", "hash": hash_key(LIMITED_KEY), "models": ["fake/mini", "fake/mid"],
     "policies": ["default", "cheap"]},
]}


@pytest.fixture
def keyed(serve: Serve) -> GatewayServer:
    return serve(KEYS, environ={"GATEWAY_KEY": ENV_KEY})


@pytest.fixture
def limited(keyed: GatewayServer) -> Iterator[openai.OpenAI]:
    with keyed.client(LIMITED_KEY) as client:
        yield client


def test_no_key_is_a_401(keyed: GatewayServer) -> None:
    with keyed.http() as http:
        resp = http.post("/v1/chat/completions", json={"model": "auto", "messages": user("hi")})
    assert resp.status_code == 401
    error = assert_openai_error(resp.json())
    assert (error["type"], error["code"]) == ("authentication_error", "invalid_api_key")
    assert "Authorization: Bearer" in error["message"] and "x-api-key" in error["message"]


def test_a_wrong_key_is_a_401(keyed: GatewayServer, up: FakeUpstream) -> None:
    with keyed.client("lr-not-a-key") as client, pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model="auto", messages=user("hi"))
    assert caught.value.status_code == 401
    assert assert_openai_error({"error": caught.value.body})["type"] == "authentication_error"
    assert up.call_count() == 0


def test_a_non_bearer_authorization_is_a_401(keyed: GatewayServer) -> None:
    with keyed.http() as http:
        resp = http.post("/v1/chat/completions", json={"model": "auto", "messages": user("hi")},
                         headers={"authorization": f"Basic {FULL_KEY}"})
    assert resp.status_code == 401


@pytest.mark.parametrize("key", [FULL_KEY, ENV_KEY], ids=["hashed", "key_env"])
def test_a_right_key_is_served(keyed: GatewayServer, key: str) -> None:
    with keyed.client(key) as client:
        raw = client.chat.completions.with_raw_response.create(model="auto", messages=user("hi"))
    assert raw.status_code == 200
    assert raw.parse().model == "fake/mini"


def test_x_api_key_is_accepted_too(keyed: GatewayServer) -> None:
    with keyed.http() as http:
        resp = http.post("/v1/chat/completions", json={"model": "auto", "messages": user("hi")},
                         headers={"x-api-key": FULL_KEY})
    assert resp.status_code == 200


def test_models_requires_a_key(keyed: GatewayServer) -> None:
    with keyed.http() as http:
        assert http.get("/v1/models").status_code == 401
        assert http.get("/v1/models", headers={"authorization": f"Bearer {FULL_KEY}"}
                        ).status_code == 200


def test_health_needs_no_key(keyed: GatewayServer) -> None:
    with keyed.http() as http:
        assert http.get("/health").status_code == 200


def test_a_limited_key_may_not_use_other_models(limited: openai.OpenAI, up: FakeUpstream) -> None:
    with pytest.raises(openai.PermissionDeniedError) as caught:
        limited.chat.completions.create(model="fake/big", messages=user("hi"))
    assert caught.value.status_code == 403
    error = assert_openai_error({"error": caught.value.body})
    assert (error["type"], error["param"]) == ("permission_error", "model")
    assert up.call_count() == 0


def test_a_limited_key_may_not_use_other_policies(limited: openai.OpenAI, up: FakeUpstream) -> None:
    with pytest.raises(openai.PermissionDeniedError) as caught:
        limited.chat.completions.create(model="auto/quality", messages=user("hi"))
    assert caught.value.status_code == 403
    assert up.call_count() == 0


def test_a_limited_key_may_use_its_models_and_policies(limited: openai.OpenAI,
                                                       up: FakeUpstream) -> None:
    assert limited.chat.completions.create(model="fake/mid", messages=user("hi")).model == "fake/mid"
    assert limited.chat.completions.create(model="auto/cheap", messages=user("hi")).model == (
        "fake/mini")


def test_auto_routes_a_limited_key_only_to_its_models(limited: openai.OpenAI,
                                                      up: FakeUpstream) -> None:
    # A code prompt goes to the complex tier, where this key may use no model: the nearest tier
    # with an allowed model serves it.
    raw = limited.chat.completions.with_raw_response.create(
        model="auto", messages=user("debug this python function for me"))
    assert upstream_models(up) == ["mid-up"]
    assert raw.parse().model == "fake/mid"


def test_fallbacks_of_a_limited_key_stay_within_its_models(limited: openai.OpenAI,
                                                           up: FakeUpstream) -> None:
    # The simple tier is fake/mini then anthropic-ish/claude; this key may not use claude.
    up.set_default("mini-up", server_error())
    with pytest.raises(openai.InternalServerError) as caught:
        limited.chat.completions.create(model="auto", messages=user("hi"))
    assert set(upstream_models(up)) == {"mini-up"}
    assert {a["model"] for a in caught.value.body["attempts"]} == {"fake/mini"}


def test_a_limited_key_may_not_name_other_models_as_fallbacks(limited: openai.OpenAI,
                                                              up: FakeUpstream) -> None:
    up.set_default("mini-up", server_error())
    with pytest.raises(openai.APIStatusError):
        limited.chat.completions.create(model="fake/mini", messages=user("hi"),
                                        extra_body={"models": ["fake/big"]})
    assert "big-up" not in upstream_models(up)


def test_models_lists_only_the_policies_a_key_may_use(keyed: GatewayServer) -> None:
    with keyed.client(LIMITED_KEY) as client:
        ids = [m.id for m in client.models.list()]
    assert [i for i in ids if i.startswith("auto")] == ["auto", "auto/default", "auto/cheap"]


# -- the upstream key ------------------------------------------------------------------------------

def responses_for_every_path(gw: GatewayServer, up: FakeUpstream) -> list[httpx.Response]:
    """Raw responses of the gateway to successes, streams and every kind of failure."""
    chat = "/v1/chat/completions"
    auth = {"authorization": f"Bearer {FULL_KEY}"}
    out: list[httpx.Response] = []
    with gw.http() as http:
        def post(body: dict[str, Any]) -> None:
            out.append(http.post(chat, json=body, headers=auth))

        post({"model": "auto", "messages": user("hi")})
        post({"model": "anthropic-ish/claude", "messages": user("hi")})
        post({"model": "anthropic-ish/claude", "messages": user("hi"), "stream": True})
        post({"model": "fake/mini", "messages": user("hi"), "stream": True,
              "stream_options": {"include_usage": True}})
        up.script("mini-up", bad_request("bad"))
        post({"model": "fake/mini", "messages": user("hi")})
        up.script("mini-up", unauthorized())
        post({"model": "fake/mini", "messages": user("hi")})
        up.script("claude-up", unauthorized())
        post({"model": "anthropic-ish/claude", "messages": user("hi")})
        up.script("mid-up", rate_limited(0.05), server_error())
        post({"model": "fake/mid", "messages": user("hi")})
        up.script("big-up", ErrorMidStream(after_chunks=2))
        post({"model": "fake/big", "messages": user("hi there"), "stream": True})
        up.script("huge-up", CutStream(after_chunks=2))
        post({"model": "fake/huge", "messages": user("hi there"), "stream": True})
        post({"model": "nope", "messages": user("hi")})
        out.append(http.post(chat, content=b"{oops", headers=auth))
        out.append(http.post(chat, json={"model": "auto", "messages": user("hi")}))
        out.append(http.get("/v1/models", headers=auth))
        out.append(http.get("/ready"))
        out.append(http.get("/nowhere"))
    return out


def test_the_upstream_key_reaches_the_upstream_and_never_the_client(serve: Serve,
                                                                    up: FakeUpstream) -> None:
    gw = serve(KEYS, environ={"GATEWAY_KEY": ENV_KEY})

    responses = responses_for_every_path(gw, up)

    openai_requests = [r for r in up.requests if r.protocol == "openai"]
    anthropic_requests = [r for r in up.requests if r.protocol == "anthropic"]
    assert openai_requests and anthropic_requests
    assert all(r.headers["authorization"] == f"Bearer {UPSTREAM_KEY}" for r in openai_requests)
    assert all(r.headers["x-api-key"] == UPSTREAM_KEY for r in anthropic_requests)
    statuses = {r.status_code for r in responses}
    assert {200, 400, 401, 404, 502} <= statuses
    for resp in responses:
        assert UPSTREAM_KEY not in resp.text
        assert all(UPSTREAM_KEY not in f"{k}: {v}" for k, v in resp.headers.items())
        # the gateway's own keys are not echoed either
        assert FULL_KEY not in resp.text and ENV_KEY not in resp.text


def test_the_gateway_key_is_not_forwarded_upstream(keyed: GatewayServer, up: FakeUpstream) -> None:
    with keyed.client(FULL_KEY) as client:
        client.chat.completions.create(model="fake/mini", messages=user("hi"))
        client.chat.completions.create(model="anthropic-ish/claude", messages=user("hi"))
    for request in up.requests:
        assert FULL_KEY not in str(request.headers)


# -- roles, and what each endpoint asks for ---------------------------------------------------------

ADMIN_KEY = "lr-admin-key-0c9d"
ROLES: dict[str, Any] = {"keys": [*KEYS["keys"], {"name": "ops", "hash": hash_key(ADMIN_KEY),
                                                  "role": "admin"}]}
#: Open to anyone: liveness and readiness. The dashboard's page answers a login form without a
#: session and its login/logout POSTs check their origin (tests/integration/test_dashboard_login.py).
PUBLIC = {"/health", "/ready"}
LOGIN = {"/dashboard", "/dashboard/login", "/dashboard/logout"}


def test_every_endpoint_but_health_and_ready_needs_a_key(serve: Serve, up: FakeUpstream) -> None:
    from starlette.routing import Route

    gw = serve(ROLES, environ={"GATEWAY_KEY": ENV_KEY})
    routes = [(r.path, sorted(r.methods or ())) for r in gw.app.routes if isinstance(r, Route)]
    assert {path for path, _ in routes} >= {"/v1/chat/completions", "/v1/models", "/metrics",
                                            "/v1/feedback", "/v1/budgets", "/dashboard/data"}
    with gw.http() as http:
        for path, methods in routes:
            for method in methods:
                if method == "HEAD" or path in LOGIN:
                    continue
                answer = http.request(method, path, json={})
                if path in PUBLIC:
                    assert answer.status_code in (200, 503), (method, path)
                else:
                    assert answer.status_code == 401, (method, path, answer.text)
                    if path.startswith("/v1/messages"):  # the Anthropic API: its error shape
                        assert answer.json()["error"]["type"] == "authentication_error"
                        continue
                    assert assert_openai_error(answer.json())["type"] == "authentication_error"
    assert up.call_count() == 0


def test_metrics_need_an_admin_key(serve: Serve) -> None:
    gw = serve(ROLES, environ={"GATEWAY_KEY": ENV_KEY})
    with gw.http() as http:
        assert http.get("/metrics").status_code == 401
        refused = http.get("/metrics", headers={"authorization": f"Bearer {FULL_KEY}"})
        assert refused.status_code == 403
        error = assert_openai_error(refused.json())
        assert (error["type"], error["code"]) == ("permission_error", "admin_required")
        scrape = http.get("/metrics", headers={"authorization": f"Bearer {ADMIN_KEY}"})
        assert scrape.status_code == 200 and "llmroute_" in scrape.text


def test_metrics_may_be_public(serve: Serve) -> None:
    gw = serve({**ROLES, "server": {"metrics": {"public": True}}}, environ={"GATEWAY_KEY": ENV_KEY})
    with gw.http() as http:
        assert http.get("/metrics").status_code == 200
        assert http.get("/v1/models").status_code == 401  # nothing else opens with it


def test_metrics_on_their_own_listener(serve: Serve) -> None:
    from .support import GatewayServer

    gw = serve({**ROLES, "server": {"metrics": {"port": 0}}}, environ={"GATEWAY_KEY": ENV_KEY})
    side = GatewayServer(gw.app.state.metrics_app).start()  # what `llmroute serve` starts with it
    try:
        with gw.http() as http:
            main = http.get("/metrics", headers={"authorization": f"Bearer {ADMIN_KEY}"})
            assert main.status_code == 404
        with side.http() as http:
            scrape = http.get("/metrics")
            assert scrape.status_code == 200 and "llmroute_" in scrape.text
            assert http.get("/v1/models").status_code == 404  # only the metrics there
    finally:
        side.stop()


def test_models_lists_only_the_models_a_key_may_use(keyed: GatewayServer) -> None:
    with keyed.client(LIMITED_KEY) as client:
        ids = [m.id for m in client.models.list()]
    assert [i for i in ids if not i.startswith("auto")] == ["fake/mini", "fake/mid"]
    with keyed.client(FULL_KEY) as client:
        every = {m.id for m in client.models.list()}
    assert {"fake/big", "fake/huge", "anthropic-ish/claude"} <= every


def test_a_reload_swaps_keys_and_keeps_the_old_ones_when_invalid(keyed: GatewayServer) -> None:
    from llmroute.errors import ConfigError
    from llmroute.settings import KeyConfig

    ring = keyed.app.state.keys
    fresh = "lr-rotated-key"
    ring.reload([KeyConfig(name="full", hash=hash_key(fresh))], {})
    with keyed.http() as http:
        def status(key: str) -> int:
            return http.get("/v1/models", headers={"authorization": f"Bearer {key}"}).status_code

        assert (status(FULL_KEY), status(fresh)) == (401, 200)
        with pytest.raises(ConfigError):  # an env var that is not set: nothing changes
            ring.reload([KeyConfig(name="x", key_env="NOT_SET_ANYWHERE")], {})
        with pytest.raises(ConfigError, match="open the gateway"):
            ring.reload([], {})
        assert (status(FULL_KEY), status(fresh)) == (401, 200)
