"""`llmroute serve` (the gateway over HTTP) and `llmroute keys` (gateway key management)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import typer

from ..catalog import Catalog
from ..config import load
from ..deployments import deployment_name
from ..errors import ConfigError, ConfigProblem
from ..metrics import MULTIPROC_ENV
from ..settings import Settings
from .common import friendly_errors, out

keys_app = typer.Typer(help="Create and hash gateway keys.", no_args_is_help=True)


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


def serve(
    config: Path | None = typer.Option(None, "--config", "-c", help="Config file."),
    host: str | None = typer.Option(None, "--host", help="Bind address (default: server.host)."),
    port: int | None = typer.Option(None, "--port", help="Port (default: server.port)."),
    workers: int | None = typer.Option(None, "--workers", "-w", help="Worker processes."),
    access_log: bool = typer.Option(False, "--access-log", help="Log a line per request."),
) -> None:
    """Serve the OpenAI-compatible gateway: point any OpenAI client's base_url at it."""
    import uvicorn

    from ..server.app import create_app
    from ..server.protocol import guarded_protocol

    with friendly_errors():
        settings = load(config)
        problems = serving_problems(settings)
        if problems:
            raise ConfigError(problems, str(config or "config"))
        server = settings.server
        bind_host, bind_port = host or server.host, port if port is not None else server.port
        count = workers or server.workers
        out.print(f"llmroute gateway on http://{bind_host}:{bind_port}/v1 "
                  f"({count} worker{'s' if count > 1 else ''})")
        options = {"host": bind_host, "port": bind_port, "log_level": "info",
                   "timeout_graceful_shutdown": int(server.graceful_shutdown_s),
                   # Per-request work the gateway does not need by default: the ledger records
                   # every request, and client addresses are only rewritten behind a named proxy.
                   "access_log": access_log or server.access_log,
                   "proxy_headers": server.forwarded_allow_ips is not None,
                   "forwarded_allow_ips": server.forwarded_allow_ips,
                   # read deadlines and the header size limit (slow-loris clients)
                   "http": guarded_protocol(server)}
        if count == 1:
            uvicorn.run(create_app(settings), **options)  # type: ignore[arg-type]
            return
        if config is not None:
            os.environ["LLMROUTE_CONFIG"] = str(config.resolve())
        # Prometheus counters of all workers, added up at each scrape (a fresh directory per run).
        os.environ[MULTIPROC_ENV] = values = tempfile.mkdtemp(prefix="llmroute-metrics-")
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
