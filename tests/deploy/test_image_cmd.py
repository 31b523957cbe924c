"""The image's start command, run for real without Docker: two processes of the Dockerfile's CMD
with its ENV and docker-compose.yml's gateway environment, on one Redis and one PostgreSQL ledger
schema (compose's topology), the config file compose mounts, the provider and gateway keys as env
vars (as the env file / Secret gives them), and a working directory they cannot write to (the
read-only root file system). What differs from a container, and why: the ports (two processes on
one host; a free port each), the Redis/PostgreSQL addresses (the local ones, a fresh prefix and
schema), the spool directory (a temporary one for /var/lib/llmroute) and the providers' base URLs
(the fake upstream: there is no internet here)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from integration.control_support import POSTGRES_DSN, drop_schema, postgres_unreachable, wait_until
from integration.control_support import wait_for_ledger as ledger_of
from llmroute.testing.behaviours import Ok
from llmroute.testing.redis_tools import TEST_REDIS_URL, drop_prefix, redis_unreachable
from llmroute.testing.upstream import FakeUpstream

from .support import ROOT, compose, dockerfile, exec_form, final_stage, image_cmd, image_env

PROVIDER_KEY = "sk-upstream-test-key"
ADMIN_KEY, APP_KEY = "lr-deploy-admin-key", "lr-deploy-app-key"


@dataclass
class Gateway:
    proc: subprocess.Popen[bytes]
    url: str
    metrics_url: str
    log: Path
    env: dict[str, str]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def container_env(up: FakeUpstream, prefix: str, ledger_url: str, data: Path) -> dict[str, str]:
    """What a gateway container's process sees, with the stated local differences."""
    image = image_env()
    service = compose()["services"]["gateway-1"]["environment"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMROUTE")}
    env.update({k: v for k, v in image.items() if k != "PATH"})
    env.update({k: str(v) for k, v in service.items()})
    # the image puts its virtual environment first on PATH; here it is this interpreter's
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    env["PYTHONPATH"] = str(ROOT / "src")
    env["LLMROUTE_CONFIG"] = str(ROOT / "deploy" / "k8s" / "base" / "llmroute.yaml")
    env.update({
        "LLMROUTE__SERVER__PORT": str(free_port()),
        "LLMROUTE__SERVER__METRICS__PORT": str(free_port()),
        "LLMROUTE__SERVER__METRICS__HOST": "127.0.0.1",
        "LLMROUTE__STATE__URL": TEST_REDIS_URL,
        "LLMROUTE__STATE__PREFIX": f"'{prefix}'",  # YAML-parsed: quoted, or `a:` is a map
        "LLMROUTE__LEDGER__URL": ledger_url,
        "LLMROUTE__LEDGER__SPOOL_PATH": str(data / "llmroute-ledger.spool.jsonl"),
        "LLMROUTE__PROVIDERS__OPENAI__BASE_URL": up.openai_base_url,
        "LLMROUTE__PROVIDERS__ANTHROPIC__BASE_URL": up.anthropic_base_url,
        # the env file's / Secret's values
        "OPENAI_API_KEY": PROVIDER_KEY, "ANTHROPIC_API_KEY": PROVIDER_KEY,
        "LLMROUTE_ADMIN_KEY": ADMIN_KEY, "LLMROUTE_APP_KEY": APP_KEY,
        "LLMROUTE_SESSION_SECRET": "deploy-test-session-secret",
    })
    return env


def start(env: dict[str, str], workdir: Path, log: Path) -> Gateway:
    """The CMD, exactly as the image runs it (exec form, found on PATH), in `workdir`."""
    proc = subprocess.Popen(image_cmd(), cwd=workdir, env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)
    host = "127.0.0.1"  # it binds 0.0.0.0 (the image's host); reached here on loopback
    return Gateway(proc, f"http://{host}:{env['LLMROUTE__SERVER__PORT']}",
                   f"http://{host}:{env['LLMROUTE__SERVER__METRICS__PORT']}/metrics", log, env)


def healthcheck(gateway: Gateway) -> int:
    """The image's HEALTHCHECK command, run with the container's env: its exit status."""
    (argument,) = final_stage(dockerfile(), "HEALTHCHECK")
    probe = exec_form(argument.split(" CMD ", 1)[1])
    return subprocess.run(probe, env=gateway.env, capture_output=True, timeout=10).returncode


def ask(gateway: Gateway) -> str | None:
    """One chat request with the app key, through the official SDK: the answer's text."""
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=APP_KEY, max_retries=0)
    answer = client.chat.completions.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    return answer.choices[0].message.content


def wait_healthy(gateway: Gateway, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert gateway.proc.poll() is None, gateway.log.read_text()
        try:
            if httpx.get(gateway.url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"gateway did not start: {gateway.log.read_text()}")


@pytest.fixture
def shared() -> Iterator[tuple[str, str]]:
    """A fresh Redis prefix and PostgreSQL schema (skips when either is down)."""
    why = redis_unreachable() or postgres_unreachable()
    if why is not None:
        pytest.skip(why)
    prefix, schema = f"llmroute-deploy:{uuid.uuid4().hex}:", f"llmroute_deploy_{uuid.uuid4().hex[:12]}"
    yield prefix, f"{POSTGRES_DSN}?schema={schema}"
    drop_prefix(prefix)
    drop_schema(schema)


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=PROVIDER_KEY) as upstream:
        upstream.set_default("*", Ok(text="served"))
        yield upstream


def test_the_images_command_serves_two_gateways_on_one_redis_and_postgres(
        up: FakeUpstream, shared: tuple[str, str], tmp_path: Path) -> None:
    prefix, ledger_url = shared
    workdir = tmp_path / "root"
    workdir.mkdir()
    # the read-only root: nothing may be written but the spool directory (a root test run
    # ignores the mode: the check that the directory stays empty is what holds)
    workdir.chmod(0o555)
    gateways = []
    try:
        for name in ("gateway-1", "gateway-2"):
            data = tmp_path / name
            data.mkdir()
            env = container_env(up, prefix, ledger_url, data)
            gateways.append(start(env, workdir, tmp_path / f"{name}.log"))
        for gateway in gateways:
            wait_healthy(gateway)
            assert httpx.get(gateway.url + "/health").json() == {"status": "ok"}
            assert healthcheck(gateway) == 0
            ready = httpx.get(gateway.url + "/ready")
            assert ready.status_code == 200, ready.text
            assert ready.json()["status"] == "ready"
            assert ready.json()["state"] == {"kind": "redis", "reachable": True}
            # keys from the env: none is refused, the app key is served by the real upstream path
            assert httpx.get(gateway.url + "/v1/models").status_code == 401
            assert ask(gateway) == "served"
            # /metrics: on its own listener without a key, not on the API port
            assert httpx.get(gateway.url + "/metrics").status_code == 404
            scraped = httpx.get(gateway.metrics_url)
            assert scraped.status_code == 200 and "llmroute_requests" in scraped.text
        # the upstream got the provider key from the env (it refuses any other)
        assert len(up.requests) == 2
        assert all(r.headers.get("authorization") == f"Bearer {PROVIDER_KEY}"
                   for r in up.requests)
        # SIGTERM (the image's STOPSIGNAL) with a request in flight: it completes (the drain),
        # while new connections are refused at once (why the pod's preStop sleeps first)
        up.set_default("*", Ok(text="drained", delay_s=3.0))
        with ThreadPoolExecutor(1) as pool:
            late = pool.submit(ask, gateways[0])
            assert wait_until(lambda: len(up.requests) == 3)
            stopped_at = time.monotonic()
            for gateway in gateways:
                gateway.proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            with pytest.raises(httpx.ConnectError):
                httpx.get(gateways[0].url + "/health", timeout=1)
            assert late.result(timeout=30) == "drained"
        for gateway in gateways:
            assert gateway.proc.wait(timeout=40) in (0, -signal.SIGTERM), gateway.log.read_text()
        drained_s = time.monotonic() - stopped_at
        assert drained_s < 30  # server.graceful_shutdown_s: the request's 3 s, not the budget
        # both wrote to the one PostgreSQL ledger, the drained request's entry included
        entries = ledger_of(ledger_url, 3)
        assert len(entries) == 3
        assert list(workdir.iterdir()) == []
        assert healthcheck(gateways[0]) != 0  # the probe fails once nothing answers
    finally:
        for gateway in gateways:
            if gateway.proc.poll() is None:
                gateway.proc.kill()
                gateway.proc.wait()
        workdir.chmod(0o755)
