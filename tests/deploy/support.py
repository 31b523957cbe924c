"""Readers of the deployment files (docs/deploy.md): the Dockerfile's instructions, the rendered
kustomize overlay, docker-compose.yml, and the routes the app serves."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS = ROOT / "deploy" / "prometheus.yml"
OVERLAY = ROOT / "deploy" / "k8s" / "overlays" / "example"
#: The Kubernetes version whose schemas the rendered objects are validated against (the
#: kubectl installed here is v1.32; kubernetes-validate bundles the schemas).
K8S_VERSION = "1.32"


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: its stage index, keyword (upper case) and argument text."""

    stage: int
    keyword: str
    argument: str


def dockerfile() -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stage = -1
    found = []
    for line in logical:
        keyword, _, argument = line.partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        found.append(Instruction(stage, keyword.upper(), argument.strip()))
    return found


def final_stage(instructions: list[Instruction], keyword: str) -> list[str]:
    """The arguments of `keyword` in the image's (last) stage."""
    last = max(i.stage for i in instructions)
    return [i.argument for i in instructions if i.stage == last and i.keyword == keyword]


def image_env() -> dict[str, str]:
    """The final stage's ENV (key=value pairs; `$PATH` left as written)."""
    env: dict[str, str] = {}
    for argument in final_stage(dockerfile(), "ENV"):
        for pair in shlex.split(argument):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def exec_form(argument: str) -> list[str]:
    """A JSON-array (exec form) argument, e.g. CMD's; anything else fails the test."""
    value = json.loads(argument)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), argument
    return value


def image_cmd() -> list[str]:
    """The image's CMD, in exec form."""
    (cmd,) = final_stage(dockerfile(), "CMD")
    return exec_form(cmd)


def render_overlay() -> list[dict[str, Any]]:
    """`kubectl kustomize` of the example overlay, as objects (offline)."""
    kubectl = shutil.which("kubectl")
    assert kubectl is not None
    done = subprocess.run([kubectl, "kustomize", str(OVERLAY)], capture_output=True, text=True,
                          timeout=60, check=True)
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def app_paths() -> set[str]:
    """The paths the gateway's app serves (its embedded-default config, no I/O)."""
    from llmroute.config import load
    from llmroute.server.app import create_app

    app = create_app(load(None, environ={}))
    return {route.path for route in app.routes}
