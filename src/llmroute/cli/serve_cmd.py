"""`llmroute serve` (the gateway over HTTP) and `llmroute keys` (gateway key management).

One worker: SIGHUP reloads the config's `keys:` in place (see `reload_keys`), and with
`server.metrics.port` a second listener in the same process serves /metrics only. With
`--workers N`, uvicorn's supervisor answers SIGHUP by restarting the workers one by one (each
reads the config again), and the metrics listener runs in the supervisor, adding up the workers'
values."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import logging.config
import os
import secrets
import shutil
import signal
import tempfile
import threading
from collections.abc import Generator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from .. import __version__
from ..catalog import Catalog
from ..config import load
from ..deployments import deployment_name
from ..errors import ConfigError, ConfigProblem, LLMRouteError
from ..metrics import MULTIPROC_ENV
from ..settings import Settings
from ..telemetry.logs import log_config
from .common import MARKUP, friendly_errors, out

if TYPE_CHECKING:
    from ..server.auth import KeyRing

keys_app = typer.Typer(help="Create and hash gateway keys.", no_args_is_help=True,
                  rich_markup_mode=MARKUP)
log = logging.getLogger("llmroute.server")


def serving_problems(settings: Settings) -> list[ConfigProblem]:
    """Tiers none of whose models has a `providers:` entry cannot serve anything."""
    catalog = Catalog.from_settings(settings)
    problems = []
    for tier in settings.tier_names:
        specs = [catalog.get(name) for name in settings.tier_models(tier)]
        served = [s for s in specs if s and deployment_name(s, settings) in settings.providers]
        if not served:
            problems.append(ConfigProblem(f"tiers.{tier}", "no model of this tier has a deployment",
                                          "add a `providers:` entry for its provider, or set "
                                          "`deployment:` on the model under `models:`"))
    return problems


def loopback(host: str) -> bool:
    """True for an address only this machine reaches (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def open_problems(settings: Settings, host: str) -> list[ConfigProblem]:
    """An open gateway (no `keys:`) may listen only on loopback unless config says otherwise."""
    if settings.keys or settings.server.allow_open or loopback(host):
        return []
    return [ConfigProblem("keys", f"no gateway keys are configured and the gateway would listen "
                          f"on {host}, where other machines can reach it and use every upstream "
                          "account through it",
                          "add `keys:` (`llmroute keys new`), listen on 127.0.0.1, or set "
                          "`server.allow_open: true` to serve it open anyway")]


def reload_keys(keys: KeyRing, config: Path | None, environ: Mapping[str, str]) -> None:
    """SIGHUP: read the config again and swap in its `keys:`; on any problem keep the old keys
    and log why. Requests already authenticated finish with the key they started with."""
    try:
        keys.reload(load(config).keys, environ)
    except (LLMRouteError, OSError) as exc:
        log.error("SIGHUP: kept the old gateway keys: %s", getattr(exc, "message", exc),
                  extra={"event": "config_reload", "ok": False})
        return
    log.warning("SIGHUP: gateway keys reloaded from %s", config or "the config",
                extra={"event": "config_reload", "ok": True})


class _MetricsServer:
    """The separate /metrics listener: a uvicorn server that leaves the signals to the main one."""

    def __init__(self, app: Any, host: str, port: int):
        import uvicorn

        class Quiet(uvicorn.Server):
            @contextmanager
            def capture_signals(self) -> Generator[None, None, None]:
                yield

        self.server = Quiet(uvicorn.Config(app, host=host, port=port, lifespan="off",
                                           access_log=False, log_config=None))


def _serve_one(app: Any, options: dict[str, Any], metrics: tuple[str, int] | None,
               config: Path | None) -> bool:
    """Serve one worker (and the metrics listener); SIGHUP reloads the keys. False when the
    server did not start."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, **options))

    async def main() -> None:
        asyncio.get_running_loop().add_signal_handler(
            signal.SIGHUP, reload_keys, app.state.keys, config, os.environ)
        side = _MetricsServer(app.state.metrics_app, *metrics).server if metrics else None
        task = asyncio.create_task(side.serve()) if side else None
        try:
            await server.serve()
        finally:
            if side is not None and task is not None:
                side.should_exit = True
                await task

    # uvicorn's own loop choice (uvloop when installed, as `uvicorn.run` and --workers N use):
    # a plain asyncio.run() serves on the stdlib loop (profile.py, 16 clients: 0.743 ms of CPU per
    # request on it, 0.654 ms on uvloop).
    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
        runner.run(main())
    return server.started


def _multiprocess_metrics(host: str, port: int) -> threading.Thread:
    """The metrics listener of `--workers N`, in the supervisor: every worker's values added up."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from ..metrics import CONTENT_TYPE

    async def scrape(request: Request) -> Response:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=os.environ[MULTIPROC_ENV])  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE)

    side = _MetricsServer(Starlette(routes=[Route("/metrics", scrape)]), host, port).server
    thread = threading.Thread(target=side.run, name="metrics", daemon=True)
    thread.start()
    return thread


def where_lines(settings: Settings, base: str, metrics: tuple[str, int] | None) -> list[str]:
    """Where the dashboard and the metrics are, and who may open them, printed at start."""
    keyed = "sign in with a gateway key" if settings.keys else "open: no `keys:` configured"
    access = settings.server.metrics
    lines = [f"dashboard on {base}/dashboard ({keyed})"]
    if metrics:
        lines.append(f"metrics on http://{metrics[0]}:{metrics[1]}/metrics (no key)")
    else:
        who = "no key" if access.public or not settings.keys else "an admin key"
        lines.append(f"metrics on {base}/metrics ({who})")
    return lines


def serve(
    config: Path | None = typer.Option(None, "--config", "-c", help="Config file."),
    host: str | None = typer.Option(None, "--host", help="Bind address (default: server.host)."),
    port: int | None = typer.Option(None, "--port", help="Port (default: server.port)."),
    workers: int | None = typer.Option(None, "--workers", "-w", help="Worker processes."),
    access_log: bool = typer.Option(False, "--access-log/--no-access-log",
                                    help="Log a line per request."),
) -> None:
    """Serve the OpenAI-compatible gateway: point any OpenAI client's base_url at it."""
    import uvicorn

    from ..server.app import create_app
    from ..server.protocol import guarded_protocol

    with friendly_errors():
        settings = load(config)
        server = settings.server
        bind_host, bind_port = host or server.host, port if port is not None else server.port
        problems = serving_problems(settings) + open_problems(settings, bind_host)
        if problems:
            raise ConfigError(problems, str(config or "config"))
        side = server.metrics
        metrics = (side.host or bind_host, side.port) if side.port is not None else None
        count = workers or server.workers
        out.print(f"llmroute gateway on http://{bind_host}:{bind_port}/v1 "
                  f"({count} worker{'s' if count > 1 else ''})")
        logging_ = log_config(settings.telemetry.logs)
        logging.config.dictConfig(logging_)
        log.info("starting llmroute %s on http://%s:%s/v1 (%s worker%s)", __version__, bind_host,
                 bind_port, count, "s" if count > 1 else "", extra={
                     "event": "start", "host": bind_host, "port": bind_port, "workers": count})
        options = {"host": bind_host, "port": bind_port, "log_level": "info",
                   "log_config": logging_,
                   "timeout_graceful_shutdown": int(server.graceful_shutdown_s),
                   # Per-request work the gateway does not need by default: the ledger records
                   # every request, and client addresses are only rewritten behind a named proxy.
                   "access_log": access_log or server.access_log,
                   "proxy_headers": server.forwarded_allow_ips is not None,
                   "forwarded_allow_ips": server.forwarded_allow_ips,
                   # read deadlines and the header size limit (slow-loris clients)
                   "http": guarded_protocol(server)}
        for line in where_lines(settings, f"http://{bind_host}:{bind_port}", metrics):
            out.print(line, markup=False)
        if count == 1:
            if not _serve_one(create_app(settings), options, metrics, config):
                raise typer.Exit(3)
            return
        if config is not None:
            os.environ["LLMROUTE_CONFIG"] = str(config.resolve())
        # Dashboard sessions must verify on every worker: one secret for all of them.
        os.environ.setdefault(server.session_secret_env, secrets.token_urlsafe(32))
        # Prometheus counters of all workers, added up at each scrape (a fresh directory per run).
        os.environ[MULTIPROC_ENV] = values = tempfile.mkdtemp(prefix="llmroute-metrics-")
        if metrics:
            _multiprocess_metrics(*metrics)
        try:
            uvicorn.run("llmroute.server.app:app_from_env", factory=True, workers=count,
                        **options)  # type: ignore[arg-type]
        finally:
            shutil.rmtree(values, ignore_errors=True)


@keys_app.command("new")
def new(name: str = typer.Option("default", "--name", help="A name for the key.")) -> None:
    """Generate a gateway key; prints the key once and the config entry with its hash."""
    from ..server.auth import hash_key, new_key

    key = new_key()
    out.print(f"key (shown once, give it to the client): {key}")
    out.print("config entry (the gateway stores only the hash):")
    out.print(f"keys:\n  - name: {name}\n    hash: {hash_key(key)}", markup=False)


@keys_app.command("hash")
def hash_cmd(key: str = typer.Argument(..., help="The key to hash ('-' reads stdin).")) -> None:
    """Print the `sha256:` hash of an existing key, for the config's `keys:` list."""
    from ..server.auth import hash_key

    value = typer.get_text_stream("stdin").read().strip() if key == "-" else key
    out.print(hash_key(value), markup=False)
