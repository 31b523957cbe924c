"""The gateways under test: how each is installed, configured, started and addressed.

Every gateway gets the same short chat request, pointed (through its own config) at the same fast
upstream. Peers are installed from PyPI into their own virtualenvs under bench/.venvs/<name>, at pinned
versions; an existing venv whose pinned versions are already installed is reused.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
VENVS = ROOT / "bench" / ".venvs"

LITELLM_VERSION = "1.99.4"      # 1.100+ moved the proxy into `litellm-proxy`, not on PyPI for 1.110.x
ROUTELLM_VERSION = "0.2.0"
TORCH_VERSION = "2.13.0"        # installed first: the CPU wheel (an unpinned torch pulls CUDA)
UVLOOP_VERSION = "0.23.0"

PROMPT = "What is 2+2?"
GATEWAY_KEY = "sk-bench-llmroute-0123456789abcdef"
LITELLM_KEY = "sk-bench-litellm-0123456789abcdef"
DUMMY_UPSTREAM_KEY = "sk-dummy-upstream"


@dataclass(frozen=True)
class Install:
    """A virtualenv with pinned packages, installed in order (each list is one pip call)."""

    name: str
    steps: tuple[tuple[str, ...], ...]
    checks: dict[str, str]  # distribution -> exact version that must be installed

    @property
    def venv(self) -> Path:
        return VENVS / self.name

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def installed(self) -> bool:
        if not self.python.exists():
            return False
        code = ("import importlib.metadata as m, json, sys\n"
                "want = json.loads(sys.argv[1])\n"
                "def v(d):\n"
                "    try:\n        return m.version(d)\n"
                "    except m.PackageNotFoundError:\n        return None\n"
                "sys.exit(0 if all((v(d) or '').split('+')[0] == x for d, x in want.items()) else 1)\n")
        done = subprocess.run([str(self.python), "-c", code, json.dumps(self.checks)],
                              capture_output=True, check=False)
        return done.returncode == 0

    def ensure(self, log: Callable[[str], None]) -> None:
        """Install (or reuse) the venv; raise RuntimeError with pip's last lines on failure."""
        if self.installed():
            log(f"{self.name}: reusing {self.venv.relative_to(ROOT)}")
            return
        log(f"{self.name}: installing into {self.venv.relative_to(ROOT)} (a few minutes the first time)")
        VENVS.mkdir(parents=True, exist_ok=True)
        if not self.python.exists():
            _run([sys.executable, "-m", "venv", str(self.venv)], f"{self.name}: venv")
        for step in self.steps:
            log(f"{self.name}: pip install {' '.join(step)}")
            _run([str(self.python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *step],
                 f"{self.name}: pip install {' '.join(step)}")
        if not self.installed():
            raise RuntimeError(f"{self.name}: installed, but the pinned versions {self.checks} are not")


def _run(argv: list[str], what: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [ln for ln in (done.stdout + done.stderr).splitlines() if "is ignored" not in ln]
        raise RuntimeError(f"{what} failed ({done.returncode}):\n" + "\n".join(lines[-12:]))


UPSTREAM_VENV = Install("upstream", (("uvloop==" + UVLOOP_VERSION,),), {"uvloop": UVLOOP_VERSION})
LITELLM_VENV = Install("litellm", ((f"litellm[proxy]=={LITELLM_VERSION}",),),
                       {"litellm": LITELLM_VERSION})
ROUTELLM_VENV = Install(
    "routellm",
    ((f"torch=={TORCH_VERSION}",),
     (f"routellm[serve]=={ROUTELLM_VERSION}", f"litellm=={LITELLM_VERSION}", f"torch=={TORCH_VERSION}")),
    {"routellm": ROUTELLM_VERSION, "litellm": LITELLM_VERSION, "torch": TORCH_VERSION})


@dataclass
class Launch:
    """How to start one gateway and talk to it."""

    argv: list[str]
    env: dict[str, str]
    url: str                      # the chat completions URL
    ready_url: str
    body: dict[str, object]
    headers: dict[str, str] = field(default_factory=dict)
    ready_timeout_s: float = 60.0
    version: str = ""


@dataclass(frozen=True)
class Gateway:
    """One gateway kind: its install (None: nothing to install) and how to launch it."""

    name: str
    install: Install | None
    launch: Callable[[int, int, Path, int], Launch]   # (port, upstream port, work dir, workers)
    workers: int = 1


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMROUTE", "OPENAI", "LITELLM"))}
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("VIRTUAL_ENV", None)
    return env


#: `BENCH_LLMROUTE__LEDGER__ENABLED=false` in the harness's environment reaches the llmroute gateway as
#: `LLMROUTE__LEDGER__ENABLED=false` (an A/B of one setting; the harness drops `LLMROUTE*` itself).
OVERRIDE_PREFIX = "BENCH_LLMROUTE__"


def settings_overrides(environ: Mapping[str, str]) -> dict[str, str]:
    """The llmroute settings a bench run overrides: `BENCH_LLMROUTE__X__Y` → `LLMROUTE__X__Y`."""
    return {k.removeprefix("BENCH_"): v for k, v in environ.items() if k.startswith(OVERRIDE_PREFIX)}


def _body(model: str) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 32}


def _version(python: Path, dist: str) -> str:
    done = subprocess.run([str(python), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() or "?"


def launch_upstream(port: int, upstream_port: int, work: Path, workers: int) -> Launch:
    """The upstream alone, as if it were a gateway (the baseline): a second instance of it."""
    del upstream_port, work, workers
    python = UPSTREAM_VENV.python if UPSTREAM_VENV.installed() else Path(sys.executable)
    return Launch([str(python), str(HERE / "fast_upstream.py"), "--port", str(port)], _base_env(),
                  f"http://127.0.0.1:{port}/v1/chat/completions", f"http://127.0.0.1:{port}/health",
                  _body("bench-model"), version="bench/gateway/fast_upstream.py")


def launch_floor(port: int, upstream_port: int, work: Path, workers: int, *,
                 canned: bool = False) -> Launch:
    """The floor (`floor_app.py`): llmroute's server and upstream client with nothing of its own."""
    del work, workers
    argv = [str(ROOT / ".venv" / "bin" / "python"), str(HERE / "floor_app.py"), "--port", str(port),
            "--upstream-port", str(upstream_port)] + (["--canned"] if canned else [])
    return Launch(argv, _base_env(), f"http://127.0.0.1:{port}/v1/chat/completions",
                  f"http://127.0.0.1:{port}/health", _body("bench-model"),
                  version="bench/gateway/floor_app.py" + (" --canned" if canned else ""))


LLMROUTE_YAML = """\
# Generated by bench/gateway/run.py: every model of every tier is served by the fast upstream.
providers:
  bench:
    type: openai
    base_url: http://127.0.0.1:{upstream_port}/v1
    api_key_env: BENCH_UPSTREAM_KEY
    timeout: {{connect_s: 5, first_byte_s: 60, total_s: 120}}
    max_connections: 1000
models:
  bench/small:  {{deployment: bench, upstream_name: bench-model, input_per_m: 0.15, output_per_m: 0.6,
                 context_window: 128000}}
  bench/medium: {{deployment: bench, upstream_name: bench-model, input_per_m: 0.4, output_per_m: 1.6,
                 context_window: 128000}}
  bench/large:  {{deployment: bench, upstream_name: bench-model, input_per_m: 3.0, output_per_m: 15.0,
                 context_window: 128000}}
tiers:
  simple: {{model: bench/small, fallbacks: [bench/medium]}}
  medium: {{model: bench/medium, fallbacks: [bench/large]}}
  complex: {{model: bench/large, fallbacks: [bench/medium]}}
routing:
  baseline_model: bench/large
keys:
  - {{name: bench, key_env: BENCH_GATEWAY_KEY}}
ledger:
  url: sqlite:///{work}/ledger.db
  spool_path: {work}/ledger.spool.jsonl
"""


#: The control plane on the hot path (issue 11): a global daily budget, a per-key rate limit and a
#: per-user token limit, all far from their caps (every request is reserved and settled on each).
LIMITS_YAML = """\
limits:
  - {{name: bench-day, window: day, usd: 1000000}}
  - {{name: bench-key-minute, scope: key, window: minute, requests: 100000000}}
  - {{name: bench-user-hour, scope: user, window: hour, tokens: 100000000000}}
state:
  url: {state}
  prefix: "llmroute-bench-{port}:"
"""


#: The ledger's write-ahead log (issue 14): off, or one fsync mode (the default is interval).
WAL_YAML = "  wal: {{enabled: {enabled}, fsync: {fsync}}}\n"


def launch_llmroute(port: int, upstream_port: int, work: Path, workers: int, *,
                    state: str | None = None, wal: str | None = None) -> Launch:
    config = work / "llmroute.yaml"
    text = LLMROUTE_YAML.format(upstream_port=upstream_port, work=work)
    if wal is not None:  # right after the ledger block it belongs to
        text += WAL_YAML.format(enabled=str(wal != "off").lower(),
                                fsync="interval" if wal == "off" else wal)
    if state is not None:
        text += LIMITS_YAML.format(state=state, port=port)
    config.write_text(text)
    env = _base_env()
    env.update(BENCH_UPSTREAM_KEY=DUMMY_UPSTREAM_KEY, BENCH_GATEWAY_KEY=GATEWAY_KEY,
               LLMROUTE_CONFIG=str(config))
    env.update(settings_overrides(os.environ))
    exe = ROOT / ".venv" / "bin" / "llmroute"
    argv = [str(exe), "serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers)]
    return Launch(argv, env, f"http://127.0.0.1:{port}/v1/chat/completions",
                  f"http://127.0.0.1:{port}/health", _body("auto"),
                  {"Authorization": f"Bearer {GATEWAY_KEY}"},
                  version=_version(ROOT / ".venv" / "bin" / "python", "llmroute"))


LITELLM_YAML = """\
# Generated by bench/gateway/run.py: one model on the fast upstream, no logging, no callbacks.
model_list:
  - model_name: bench-model
    litellm_params:
      model: openai/bench-model
      api_base: http://127.0.0.1:{upstream_port}/v1
      api_key: {dummy}
litellm_settings:
  telemetry: false
  set_verbose: false
  json_logs: false
  turn_off_message_logging: true
  callbacks: []
  success_callback: []
  failure_callback: []
  drop_params: true
general_settings:
  master_key: {master}
  disable_spend_logs: true
  disable_error_logs: true
  disable_adding_master_key_hash_to_db: true
"""


#: uvicorn's logging config without the per-request access log (llmroute has none by default).
NO_ACCESS_LOG = {
    "version": 1, "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {"uvicorn": {"handlers": ["stderr"], "level": "INFO"},
                "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False}},
}


def launch_litellm(port: int, upstream_port: int, work: Path, workers: int) -> Launch:
    del workers
    log_config = work / "litellm-logging.json"
    log_config.write_text(json.dumps(NO_ACCESS_LOG))
    config = work / "litellm.yaml"
    config.write_text(LITELLM_YAML.format(upstream_port=upstream_port, dummy=DUMMY_UPSTREAM_KEY,
                                          master=LITELLM_KEY))
    env = _base_env()
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR", LITELLM_TELEMETRY="False",
               TELEMETRY="False", DISABLE_ADMIN_UI="True", ANONYMIZED_TELEMETRY="False",
               DO_NOT_TRACK="1", HF_HUB_OFFLINE="1")
    argv = [str(LITELLM_VENV.python), "-m", "litellm.proxy.proxy_cli", "--config", str(config),
            "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1",
            "--log_config", str(log_config)]
    return Launch(argv, env, f"http://127.0.0.1:{port}/v1/chat/completions",
                  f"http://127.0.0.1:{port}/health/liveliness", _body("bench-model"),
                  {"Authorization": f"Bearer {LITELLM_KEY}"}, ready_timeout_s=120,
                  version=_version(LITELLM_VENV.python, "litellm"))


# RouteLLM's openai_server binds 0.0.0.0 and parses its own argv at import; this shim runs the same
# app on 127.0.0.1 with one worker. Its Controller calls litellm.acompletion(model=<strong|weak>,
# api_base=--base-url, api_key=--api-key); the module also builds an AsyncOpenAI() at import, which
# needs OPENAI_API_KEY set (any value).
ROUTELLM_SHIM = """\
import sys
import uvicorn
port = int(sys.argv[sys.argv.index("--port") + 1])
import routellm.openai_server as server
uvicorn.run(server.app, host="127.0.0.1", port=port, workers=1, access_log=False)  # else its defaults
"""


def launch_routellm(port: int, upstream_port: int, work: Path, workers: int) -> Launch:
    del workers
    shim = work / "routellm_shim.py"
    shim.write_text(ROUTELLM_SHIM)
    env = _base_env()
    env.update(OPENAI_API_KEY=DUMMY_UPSTREAM_KEY, LITELLM_LOCAL_MODEL_COST_MAP="True",
               LITELLM_LOG="ERROR", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    argv = [str(ROUTELLM_VENV.python), str(shim), "--routers", "random", "--port", str(port),
            "--base-url", f"http://127.0.0.1:{upstream_port}/v1", "--api-key", DUMMY_UPSTREAM_KEY,
            "--strong-model", "openai/bench-strong", "--weak-model", "openai/bench-weak"]
    return Launch(argv, env, f"http://127.0.0.1:{port}/v1/chat/completions",
                  f"http://127.0.0.1:{port}/health", _body("router-random-0.5"), ready_timeout_s=120,
                  version=_version(ROUTELLM_VENV.python, "routellm"))


GATEWAYS: dict[str, Gateway] = {
    "upstream": Gateway("upstream", None, launch_upstream),
    "llmroute": Gateway("llmroute", None, launch_llmroute),
    "llmroute-w2": Gateway("llmroute-w2", None, launch_llmroute, workers=2),
    "llmroute-limits": Gateway("llmroute-limits", None,
                               functools.partial(launch_llmroute, state="memory://")),
    "llmroute-redis": Gateway("llmroute-redis", None, functools.partial(
        launch_llmroute, state="redis://127.0.0.1:6379/0")),
    "llmroute-wal-off": Gateway("llmroute-wal-off", None, functools.partial(launch_llmroute, wal="off")),
    "llmroute-wal-never": Gateway("llmroute-wal-never", None,
                                  functools.partial(launch_llmroute, wal="never")),
    "llmroute-wal-always": Gateway("llmroute-wal-always", None,
                                   functools.partial(launch_llmroute, wal="always")),
    "floor": Gateway("floor", None, launch_floor),
    "floor-canned": Gateway("floor-canned", None, functools.partial(launch_floor, canned=True)),
    "litellm": Gateway("litellm", LITELLM_VENV, launch_litellm),
    "routellm": Gateway("routellm", ROUTELLM_VENV, launch_routellm),
}


def body_digest(body: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:8]
