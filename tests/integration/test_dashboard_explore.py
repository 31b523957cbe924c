"""The dashboard's request explorer through the real server, on the hand-worked report ledger
(tests/helpers.py: r1..r6 over 15 hours; team-a made r1, r2, r6, team-b r3, r4; r5 failed without
a key), with a response-cache hit and stored text added: newest first, keyset pages, each filter,
bad input as 400s, one request's detail, an application key confined to its own requests (404 on
another's), and a real Chromium filtering the list and opening a request."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from .browser import CHROMIUM, dashboard_dom
from .support import GatewayServer, Serve, assert_openai_error
from .test_dashboard_series import ADMIN, APP_A, filled


def ask(gw: GatewayServer, bearer: str, path: str, **params: str) -> httpx.Response:
    with gw.http() as http:
        return http.get(path, params=params, headers={"authorization": f"Bearer {bearer}"})


def ids(gw: GatewayServer, bearer: str, **params: str) -> list[str]:
    answer = ask(gw, bearer, "/dashboard/requests", **params)
    assert answer.status_code == 200, answer.text
    return [r["request_id"] for r in answer.json()["data"]]


@pytest.fixture
def gw(serve: Serve, tmp_path: Path) -> GatewayServer:
    server, _ = filled(serve, tmp_path, cache={"r2": "hit", "r6": "miss"},
                       text={"r3": ("a long question", "a long answer")})
    return server


def test_pages_are_newest_first_and_keyset(gw: GatewayServer) -> None:
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": "2", **({"before": cursor} if cursor else {})}
        body = ask(gw, ADMIN, "/dashboard/requests", **params).json()
        seen += [r["request_id"] for r in body["data"]]
        cursor, pages = body["next"], pages + 1
        if cursor is None:
            break
    assert seen == ["r6", "r5", "r4", "r3", "r2", "r1"] and pages == 3
    first = ask(gw, ADMIN, "/dashboard/requests").json()["data"][0]
    assert first["request_id"] == "r6" and first["cost_usd"] == "0.05" and first["cache"] == "miss"
    assert "prompt_text" not in first and "latent" not in first


def test_each_filter(gw: GatewayServer) -> None:
    assert ids(gw, ADMIN, status="error") == ["r5"]
    assert ids(gw, ADMIN, model="m/big") == ["r4", "r3"]
    assert ids(gw, ADMIN, key_name="team-a") == ["r6", "r2", "r1"]
    assert ids(gw, ADMIN, policy="default") == ["r6", "r5", "r4", "r3", "r2", "r1"]
    assert ids(gw, ADMIN, policy="other") == []
    assert ids(gw, ADMIN, cache="hit") == ["r2"]
    assert ids(gw, ADMIN, key_name="team-a", status="ok", cache="miss") == ["r6"]
    assert ids(gw, ADMIN, since="1h") == []  # the newest is three hours old


@pytest.mark.parametrize(("param", "value"), [("status", "bogus"), ("cache", "maybe"),
                                              ("limit", "0"), ("limit", "201"), ("limit", "x"),
                                              ("before", "yesterday"), ("before", "2025-01-01"),
                                              ("since", "soon")])
def test_bad_input_is_a_400(gw: GatewayServer, param: str, value: str) -> None:
    answer = ask(gw, ADMIN, "/dashboard/requests", **{param: value})
    assert answer.status_code == 400, answer.text
    assert assert_openai_error(answer.json())["param"] == param


def test_one_request_in_detail(gw: GatewayServer) -> None:
    body: dict[str, Any] = ask(gw, ADMIN, "/dashboard/requests/r3").json()
    assert (body["policy"], body["tier"], body["model"], body["key_name"]) == (
        "default", "complex", "m/big", "team-b")
    assert (body["cost_usd"], body["baseline_cost_usd"], body["user_rating"],
            body["task_success"]) == ("0.90", "0.90", 5, True)
    assert (body["prompt_text"], body["response_text"]) == ("a long question", "a long answer")
    assert "latent" not in body
    missing = ask(gw, ADMIN, "/dashboard/requests/nope")
    assert missing.status_code == 404 and assert_openai_error(missing.json())["code"] == "not_found"
    assert ask(gw, "lr-wrong", "/dashboard/requests/r3").status_code == 401
    assert ask(gw, "lr-wrong", "/dashboard/requests").status_code == 401


def test_an_app_key_sees_only_its_own_requests(gw: GatewayServer) -> None:
    assert ids(gw, APP_A) == ["r6", "r2", "r1"]
    assert ids(gw, APP_A, key_name="team-b") == ["r6", "r2", "r1"]  # the key filter is not its to set
    assert ids(gw, APP_A, status="error") == []
    assert ask(gw, APP_A, "/dashboard/requests/r1").json()["key_name"] == "team-a"
    for other in ("r3", "r5", "nope"):  # another key's request reads as an unknown one
        answer = ask(gw, APP_A, f"/dashboard/requests/{other}")
        assert answer.status_code == 404, answer.text
        assert "team-b" not in answer.text


def test_a_real_browser_filters_and_opens_a_request(gw: GatewayServer, tmp_path: Path) -> None:
    if CHROMIUM is None:  # the page itself needs the real browser (installed by .ci/run)
        return
    rows = "document.querySelectorAll('#explore-rows tr')"
    script = ("(function(){ if (!window.__step) { window.__step = 1; "
              "var s = document.getElementById('f-model'); s.value = 'm/big'; "
              "s.dispatchEvent(new Event('change')); return false; } "
              f"if (window.__step === 1 && {rows}.length === 2) {{ window.__step = 2; "
              "document.querySelector('#explore-rows button.open').click(); return false; } "
              "return window.__step === 2 && document.getElementById('detail-title').textContent"
              " === 'Request r4'; })()")
    dom = dashboard_dom(tmp_path / "profile-explore", f"{gw.url}/dashboard", ADMIN,
                        ready=f"{rows}.length > 0 && {script}")
    listed = re.search(r'id="explore-rows"[^>]*>(.*?)</tbody>', dom, re.S)
    assert listed is not None and listed.group(1).count("<tr>") == 2, dom[-3000:]
    assert re.findall(r'class="open">(r\d)<', listed.group(1)) == ["r4", "r3"]
    assert "<td>m/big</td><td>default</td><td>complex</td><td>ok</td>" in listed.group(1)
    detail = re.search(r'id="detail"[^>]*>(.*?)</tbody>', dom, re.S)
    assert detail is not None
    for group, field, value in (("decision", "tier", "complex"), ("decision", "policy", "default"),
                                ("feedback", "user_rating", "3"),
                                ("request", "key_name", "team-b")):
        assert f"<td>{group}</td><td>{field}</td><td>{value}</td>" in detail.group(1), (
            field, detail.group(1))
    assert "prompt_text" not in detail.group(1)  # r4 kept no text: no row for it
    assert re.search(r"<td>request</td><td>ts</td><td>\d{4}-\d\d-\d\d \d\d:\d\d \(\d+ h ago\)",
                     detail.group(1))


def test_a_real_browser_shows_an_app_key_its_own_only(gw: GatewayServer, tmp_path: Path) -> None:
    if CHROMIUM is None:  # the page itself needs the real browser (installed by .ci/run)
        return
    dom = dashboard_dom(tmp_path / "profile-app", f"{gw.url}/dashboard", APP_A,
                        ready="document.querySelectorAll('#explore-rows tr').length > 0 && "
                              "document.querySelectorAll('#spend-keys tr').length > 0")
    listed = re.search(r'id="explore-rows"[^>]*>(.*?)</tbody>', dom, re.S)
    assert listed is not None
    assert re.findall(r'class="open">(r\d)<', listed.group(1)) == ["r6", "r2", "r1"]
    keys = re.search(r'id="spend-keys"[^>]*>(.*?)</tbody>', dom, re.S)
    assert keys is not None and keys.group(1).count("<tr>") == 1 and "team-a" in keys.group(1)
    assert "team-b" not in dom and "beta" not in dom
    assert re.search(r'id="teams-panel" style="display: none;"', dom)
    assert re.search(r'id="f-key-label" style="display: none;"', dom)
