"""Secrets never leak, and the gateway calls only the URLs its config names.

One real `llmroute serve` process (access log on, text stored in the ledger) in front of a
FakeUpstream that requires the upstream API key, runs every error path we can make: missing, wrong
and misplaced gateway keys, upstream 401/403 echoing our API key, an upstream 500 whose body holds
our Authorization header, a 400 echoing it, a stream whose error event quotes it, a stream cut
mid-way, a timeout, a refused connection, invalid requests. Then every output is grepped for the raw
upstream key and the raw gateway keys (and the gateway keys' hashes, which only the config holds):
every response body and header, the process's log, every column of every ledger table and the
ledger's files on disk, /metrics, `llmroute report` (JSON and HTML) and /dashboard/data of each
role. Also: a redirect from an upstream is never followed, and image URLs in content are forwarded,
never fetched."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from llmroute.server.auth import hash_key
from llmroute.testing.behaviours import CutStream, Error, ErrorMidStream, Hang
from llmroute.testing.upstream import FakeUpstream

from .support import UPSTREAM_KEY, GatewayServer, Serve, assert_openai_error, user
from .test_ledger_load import free_port

ADMIN, APP, ENV_KEY = "lr-admin-3b9f0e7d", "lr-app-5c1a2b8e", "lr-env-key-9d7c6b5a"
GATEWAY_KEYS = (ADMIN, APP, ENV_KEY)
ECHO = f"Authorization: Bearer {UPSTREAM_KEY}"


def gateway_config(up: FakeUpstream, tmp_path: Path) -> dict[str, Any]:
    timeout = {"connect_s": 1, "first_byte_s": 0.5, "total_s": 3}
    model = {"input_per_m": "1", "output_per_m": "2"}
    return {
        "providers": {
            "fake": {"type": "openai", "base_url": up.openai_base_url,
                     "api_key_env": "FAKE_OPENAI_KEY", "timeout": timeout},
            "fakeant": {"type": "anthropic", "base_url": up.anthropic_base_url,
                        "api_key_env": "FAKE_OPENAI_KEY", "timeout": timeout},
            "dead": {"type": "openai", "base_url": f"http://127.0.0.1:{free_port()}/v1",
                     "api_key_env": "FAKE_OPENAI_KEY", "timeout": timeout},
        },
        # one model per failure: a breaker opened by one path does not hide the next
        "models": {**{f"fake/{m}": {"deployment": "fake", "upstream_name": f"{m}-up", **model}
                      for m in ("a", "b", "e401", "e500", "e429", "mid", "hang")},
                   **{f"ant/{m}": {"deployment": "fakeant", "upstream_name": f"{m}-up", **model}
                      for m in ("c", "e403", "mid")},
                   "dead/d": {"deployment": "dead", "upstream_name": "d-up", **model}},
        "tiers": {"simple": {"model": "fake/a"}, "medium": {"model": "fake/b"},
                  "complex": {"model": "ant/c"}},
        "policies": {"default": {"router": "rules", "default_tier": "simple"}},
        "resilience": {"deadline_s": 3, "retry": {"max_attempts": 1},
                       "cooldown": {"failures": 100, "cooldown_s": 0.1}},
        "ledger": {"enabled": True, "url": f"sqlite:///{tmp_path / 'ledger.db'}",
                   "spool_path": str(tmp_path / "spool.jsonl"), "flush_interval_s": 0.05,
                   "store_text": True},
        "keys": [{"name": "ops", "hash": hash_key(ADMIN), "role": "admin"},
                 {"name": "shop", "hash": hash_key(APP)},
                 {"name": "env", "key_env": "GATEWAY_KEY"}],
    }


def error_paths(http: httpx.Client, up: FakeUpstream) -> list[httpx.Response]:
    """Every answer of the gateway to successes and failures, bodies read in full."""
    chat = "/v1/chat/completions"
    out: list[httpx.Response] = []

    def post(body: dict[str, Any], key: str | None = APP, **headers: str) -> None:
        sent = {"authorization": f"Bearer {key}", **headers} if key else headers
        out.append(http.post(chat, json=body, headers=sent))

    def ask(model: str, stream: bool = False) -> dict[str, Any]:
        return {"model": model, "messages": user("hello there"), "stream": stream}

    post(ask("fake/a"))
    post(ask("ant/c", stream=True))
    post(ask("fake/a"), key=None)                                     # no key
    post(ask("fake/a"), key=APP[:-1])                                 # a near miss
    post(ask("fake/a"), key=None, authorization=f"Basic {APP}")       # not a bearer
    out.append(http.get("/dashboard", params={"key": "lr-wrong-key-in-url"}))
    up.script("e401-up", Error(401, f"Incorrect API key provided: {UPSTREAM_KEY}",
                               code="invalid_api_key"))
    post(ask("fake/e401"))
    up.script("e403-up", Error(403, f"key {UPSTREAM_KEY} may not use this model",
                               type="permission_error"))
    post(ask("ant/e403"))
    up.script("e500-up", Error(500, f"internal error; request headers were: {ECHO}"))
    post(ask("fake/e500"))
    up.script("b-up", Error(400, f"Invalid request from key {UPSTREAM_KEY}",
                            headers={"x-echo": ECHO}))
    post(ask("fake/b"))
    up.script("e429-up", Error(429, "slow down", headers={"retry-after": "0", "x-echo": ECHO}))
    post(ask("fake/e429"))
    up.script("mid-up", ErrorMidStream(2, Error(500, f"stream broke: {ECHO}")))
    post(ask("fake/mid", stream=True))
    up.script("mid-up", ErrorMidStream(2, Error(500, f"stream broke for {UPSTREAM_KEY}")))
    post(ask("ant/mid", stream=True))
    up.script("b-up", CutStream(2))
    post(ask("fake/b", stream=True))
    up.script("hang-up", Hang())
    post(ask("fake/hang"))                                            # a timeout
    post(ask("dead/d"))                                               # connection refused
    post(ask("no-such/model"))
    post({"model": "fake/a"})                                         # no messages
    post({"model": "fake/a", "messages": [{"role": "wizard", "content": 3}]})
    out.append(http.post(chat, content=b"{not json", headers={"authorization": f"Bearer {APP}"}))
    out.append(http.post("/v1/feedback", json={"request_id": "nope", "rating": 9},
                         headers={"authorization": f"Bearer {APP}"}))
    out.append(http.get("/v1/budgets", headers={"authorization": f"Bearer {ENV_KEY}"}))
    out.append(http.get("/metrics", headers={"authorization": f"Bearer {APP}"}))
    out.append(http.get("/nowhere"))
    return out


def start(path: Path, port: int, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
    log = path.with_suffix(".log")
    proc = subprocess.Popen([sys.executable, "-m", "llmroute", "serve", "-c", str(path), "--host",
                             "127.0.0.1", "--port", str(port), "--access-log"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc, log
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(log.read_text())


def ledger_dump(path: Path) -> str:
    """Every column of every row of every table of the ledger, as text."""
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return "\n".join(repr(row) for table in tables
                         for row in db.execute(f'SELECT * FROM "{table}"'))


def test_no_output_holds_a_key(up: FakeUpstream, tmp_path: Path) -> None:
    path, port = tmp_path / "llmroute.yaml", free_port()
    path.write_text(yaml.safe_dump(gateway_config(up, tmp_path), sort_keys=False))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LLMROUTE")},
           "FAKE_OPENAI_KEY": UPSTREAM_KEY, "GATEWAY_KEY": ENV_KEY}
    proc, log = start(path, port, env)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=20) as http:
            responses = error_paths(http, up)
            admin = {"authorization": f"Bearer {ADMIN}"}
            time.sleep(0.5)  # the ledger writer flushes every 50 ms
            board = http.get("/dashboard/data", params={"since": "1h"}, headers=admin)
            assert board.json()["total"]["requests"] >= 12, board.text
            login = http.post("/dashboard/login", data={"key": APP}, headers={"origin": url})
            cookie = login.cookies.get("llmroute_session") or ""
            own = http.get("/dashboard/data", headers={"cookie": f"llmroute_session={cookie}"})
            responses += [board, login, own, http.get("/metrics", headers=admin)]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    statuses = {r.status_code for r in responses}
    assert {200, 303, 400, 401, 403, 404, 502} <= statuses, statuses
    texts = " ".join(r.text for r in responses)
    for said in ("ReadTimeout", "ConnectError", "stream broke"):  # these paths all ran
        assert said in texts, said
    assert sum(r.status_code == 200 for r in responses) >= 6
    # the upstream did get our key, and saw it echoed back in its scripts
    assert all(UPSTREAM_KEY in str(r.headers) for r in up.requests)
    report_json = subprocess.run([sys.executable, "-m", "llmroute", "report", "-c", str(path),
                                  "--since", "1h", "--by", "key", "--json"],
                                 capture_output=True, text=True, env=env, timeout=60, check=True)
    html = tmp_path / "report.html"
    subprocess.run([sys.executable, "-m", "llmroute", "report", "-c", str(path), "--since", "1h",
                    "--html", str(html)], capture_output=True, env=env, timeout=60, check=True)
    assert '"shop"' in report_json.stdout  # the report is about these requests

    outputs = {f"{r.request.method} {r.request.url.path} -> {r.status_code}":
               f"{r.headers}\n{r.text}" for r in responses}
    outputs["the process's log"] = log.read_text()
    outputs["every ledger column"] = ledger_dump(tmp_path / "ledger.db")
    outputs["llmroute report --json"] = report_json.stdout + report_json.stderr
    outputs["llmroute report --html"] = html.read_text()
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()
             if p.is_file() and p.name.startswith(("ledger", "spool"))}
    assert "ledger.db" in files
    secrets = [UPSTREAM_KEY, *GATEWAY_KEYS, *(hash_key(k).split(":")[1] for k in GATEWAY_KEYS)]
    for where, text in outputs.items():
        for secret in secrets:
            assert secret not in text, f"a secret leaked into {where}"
    for name, data in files.items():
        for secret in secrets:
            assert secret.encode() not in data, f"a secret leaked into the file {name}"
    # and the errors are still useful: the upstream's text is there, the key redacted
    error_texts = " ".join(r.text for r in responses if r.status_code == 502)
    assert "[redacted]" in error_texts


# -- the gateway calls only the URLs in its config ------------------------------------------------

class Counting:
    """A tiny HTTP server that counts what reaches it (the place a redirect points to, or an
    image URL)."""

    def __init__(self) -> None:
        self.hits: list[str] = []

        async def anything(request: Request) -> Response:
            self.hits.append(f"{request.method} {request.url.path}")
            return JSONResponse({"choices": []})

        routes = [Route("/{path:path}", anything, methods=["GET", "POST"])]
        self.server = GatewayServer(Starlette(routes=routes)).start()


class Redirecting:
    """An upstream that answers every request with a 307 to `target`."""

    def __init__(self, target: str) -> None:
        self.hits = 0

        async def redirect(request: Request) -> Response:
            self.hits += 1
            return RedirectResponse(target + request.url.path, status_code=307)

        routes = [Route("/{path:path}", redirect, methods=["GET", "POST"])]
        self.server = GatewayServer(Starlette(routes=routes)).start()


def test_a_redirect_is_never_followed(serve: Serve, up: FakeUpstream) -> None:
    elsewhere = Counting()
    redirecting = Redirecting(elsewhere.server.url)
    try:
        gw = serve({"providers": {"fake": {"base_url": redirecting.server.url + "/v1"}}})
        with gw.http() as http:
            for stream in (False, True):
                answer = http.post("/v1/chat/completions", json={
                    "model": "fake/mini", "messages": user("hi"), "stream": stream})
                assert answer.status_code == 502, answer.text
                error = assert_openai_error(answer.json())
                assert "redirect" in error["message"] and "not followed" in error["message"]
        assert redirecting.hits == 2 and elsewhere.hits == []
    finally:
        redirecting.server.stop()
        elsewhere.server.stop()


def test_image_urls_are_forwarded_never_fetched(serve: Serve, up: FakeUpstream) -> None:
    images = Counting()
    try:
        gw = serve({"models": {"fake/mini": {"capabilities": ["vision"]}}})
        image = f"{images.server.url}/cat.png"
        content = [{"type": "text", "text": "what is this?"},
                   {"type": "image_url", "image_url": {"url": image}}]
        with gw.client() as client:
            client.chat.completions.create(model="fake/mini",
                                           messages=[{"role": "user", "content": content}])
        [received] = up.requests
        assert received.body is not None
        assert received.body["messages"][0]["content"][1]["image_url"]["url"] == image
        time.sleep(0.2)
        assert images.hits == []
    finally:
        images.server.stop()


def test_the_scrubber_finds_every_form_of_the_key() -> None:
    from llmroute.providers.http import REDACTED, Scrubber

    scrub = Scrubber.of({"authorization": f"Bearer {UPSTREAM_KEY}", "x-api-key": UPSTREAM_KEY,
                         "content-type": "application/json"})
    assert scrub.text(f"got {ECHO} and {UPSTREAM_KEY}") == (
        f"got Authorization: Bearer {REDACTED} and {REDACTED}")
    assert scrub.data(UPSTREAM_KEY.encode()) == REDACTED.encode()
    assert scrub.text("application/json") == "application/json"
