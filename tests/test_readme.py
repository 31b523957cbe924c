"""README.md's code blocks run as written: every ```python and ```bash block, each in a fresh process
in a scratch directory (with `examples/` and `llmroute.example.yaml` beside it), must exit 0 and print
no traceback, no unclosed session and no ResourceWarning (shown: PYTHONWARNINGS enables them).

How each block runs:
- The gateway block (it starts `llmroute serve`) runs in the background for the whole module, as
  written, and the blocks that talk to the gateway (127.0.0.1:8080) run against it. Its two ports are
  the one change: free ones instead of 8000/8080 (`--port 8000` rewritten; the example config's
  upstream and listening port through its documented LLMROUTE__* overrides), so the test runs beside
  anything else on the machine.
- Excluded: the block with `make demo` / `make test` (it rebuilds .venv and runs the whole suite,
  this test included; `make demo` has its own test, tests/test_demo.py), and the line
  `make setup && source .venv/bin/activate`, which this test stands for (it runs in the set-up venv,
  with the venv's bin/ first on PATH).
- Every other block is a one-shot, so a block added to the README is run here without a change.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
GATEWAY = "127.0.0.1:8080"  # where the README's clients find the gateway
SETUP_LINE = "make setup && source .venv/bin/activate"
#: What must not appear on a snippet's stderr.
LEAKS = ("Traceback", "Unclosed", "unclosed", "ResourceWarning")
TIMEOUT_S = 60


@dataclass(frozen=True)
class Block:
    """One fenced code block of the README."""

    lang: str
    code: str
    line: int  # where it starts, for the test id

    @property
    def id(self) -> str:
        return f"{self.lang}@L{self.line}"

    @property
    def excluded(self) -> bool:
        return self.lang == "bash" and bool(re.search(r"\bmake (demo|test)\b", self.code))

    @property
    def serves(self) -> bool:
        return "llmroute serve" in self.code

    @property
    def needs_gateway(self) -> bool:
        return GATEWAY in self.code


def readme_blocks() -> tuple[Block, ...]:
    text = README.read_text(encoding="utf-8")
    return tuple(
        Block(m["lang"], m["code"], text.count("\n", 0, m.start()) + 1)
        for m in re.finditer(r"^```(?P<lang>python|bash)\n(?P<code>.*?)^```", text, re.M | re.S))


BLOCKS = readme_blocks()
ONE_SHOT = tuple(b for b in BLOCKS if not (b.excluded or b.serves or b.needs_gateway))
CLIENTS = tuple(b for b in BLOCKS if b.needs_gateway and not b.serves)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def environment() -> dict[str, str]:
    """The caller's environment without LLMROUTE* settings, the venv first on PATH (what
    `source .venv/bin/activate` does) and ResourceWarnings shown."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMROUTE")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONWARNINGS"] = "default::ResourceWarning"
    return env


def command(block: Block) -> list[str]:
    if block.lang == "python":
        return [sys.executable, "-c", block.code]
    code = block.code.replace(SETUP_LINE, "true  # the test runs in the set-up venv")
    return ["bash", "-euo", "pipefail", "-c", code]


def run(block: Block, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run one block to its end and check it ended well."""
    done = subprocess.run(command(block), cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S, check=False)
    assert done.returncode == 0, f"{block.id} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    leaked = [word for word in LEAKS if word in done.stderr]
    assert not leaked, f"{block.id} printed {leaked}:\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch directory with what the README's commands name, relative to the repository."""
    path = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "examples", path / "examples")
    shutil.copy(ROOT / "llmroute.example.yaml", path)
    return path


@dataclass(frozen=True)
class Gateway:
    port: int
    env: dict[str, str]

    def patch(self, block: Block) -> Block:
        return Block(block.lang, block.code.replace(GATEWAY, f"127.0.0.1:{self.port}"), block.line)


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"the README's gateway did not start:\n{log.read_text()}")


@pytest.fixture(scope="module")
def gateway(workdir: Path) -> Iterator[Gateway]:
    """The README's gateway block, running (in its own process group) until the module ends."""
    (block,) = (b for b in BLOCKS if b.serves)
    upstream, port = free_port(), free_port()
    env = {**environment(), "LLMROUTE__SERVER__PORT": str(port),
           "LLMROUTE__PROVIDERS__LOCAL__BASE_URL": f"http://127.0.0.1:{upstream}/v1"}
    code = block.code.replace("--port 8000", f"--port {upstream}")
    assert code != block.code, "the gateway block no longer starts the fake upstream on port 8000"
    log = workdir / "gateway.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["bash", "-c", code], cwd=workdir, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_ready(f"http://127.0.0.1:{port}/health", proc, log)
        yield Gateway(port, env)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    assert "Traceback" not in log.read_text(), log.read_text()


def test_the_readme_has_the_blocks_this_test_runs() -> None:
    langs = [b.lang for b in BLOCKS]
    assert langs.count("python") >= 2 and langs.count("bash") >= 4
    assert sum(b.excluded for b in BLOCKS) == 1 and sum(b.serves for b in BLOCKS) == 1
    assert any(SETUP_LINE in b.code for b in ONE_SHOT)
    assert len(CLIENTS) >= 2  # the OpenAI SDK snippet and curl


@pytest.mark.parametrize("block", ONE_SHOT, ids=[b.id for b in ONE_SHOT])
def test_snippet_runs(block: Block, workdir: Path) -> None:
    done = run(block, workdir, environment())
    assert done.stdout.strip(), f"{block.id} printed nothing"


@pytest.mark.parametrize("block", CLIENTS, ids=[b.id for b in CLIENTS])
def test_snippet_against_the_gateway(block: Block, gateway: Gateway, workdir: Path) -> None:
    done = run(gateway.patch(block), workdir, gateway.env)
    # an answer (no error body) from the fake upstream, through the gateway, naming the model
    # the README's config routed to
    assert "local/" in done.stdout and "error" not in done.stdout.lower(), done.stdout
