"""The deployment files (docs/deploy.md), checked as far as a machine without a Docker engine or
a cluster allows: the kustomize overlay renders and every object validates against the
Kubernetes 1.32 schemas; docker-compose.yml validates against the compose spec; and the
invariants between them, the Dockerfile and the app hold (probe paths the app serves, ports that
agree, a grace period that covers the drain, no literal secrets, non-root, the topology)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmroute.config import load

from .support import (
    COMPOSE,
    K8S_VERSION,
    PROMETHEUS,
    ROOT,
    app_paths,
    by_kind,
    compose,
    dockerfile,
    exec_form,
    final_stage,
    image_cmd,
    image_env,
    render_overlay,
)

#: Env var names that carry a secret: never a literal value in a manifest or the compose file.
SECRET_NAME = re.compile(r"KEY|SECRET|PASSWORD|TOKEN|LEDGER__URL")


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed: the kustomize overlay cannot be rendered")
    return render_overlay()


@pytest.fixture(scope="module")
def pod(rendered: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = by_kind(rendered, "Deployment")
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


@pytest.fixture(scope="module")
def container(pod: dict[str, Any]) -> dict[str, Any]:
    (only,) = pod["containers"]
    assert isinstance(only, dict)
    return only


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in container["env"]}


def plain_env(container: dict[str, Any]) -> dict[str, str]:
    return {name: e["value"] for name, e in env_of(container).items() if "value" in e}


def port_number(container: dict[str, Any], port: int | str) -> int:
    """A probe's or Service's port (a number or a container port's name) as a number."""
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container["ports"] if p.get("name") == port]
    return int(number)


def pod_settings(rendered: list[dict[str, Any]], container: dict[str, Any], tmp: Path) -> Any:
    """The Settings the pod runs: the ConfigMap's file plus the container's literal env."""
    (config_map,) = by_kind(rendered, "ConfigMap")
    path = tmp / "llmroute.yaml"
    path.write_text(config_map["data"]["llmroute.yaml"])
    return load(path, environ=plain_env(container))


# -- schemas ----------------------------------------------------------------------------------


def test_every_rendered_object_validates_against_the_kubernetes_schema(
        rendered: list[dict[str, Any]]) -> None:
    import kubernetes_validate

    kinds = sorted(o["kind"] for o in rendered)
    assert kinds == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler",
                     "PodDisruptionBudget", "Service"]
    for obj in rendered:
        # strict: an unknown field (a typo such as `readinesProbe`) fails too
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_a_typo_in_a_manifest_fails_the_schema_check(rendered: list[dict[str, Any]]) -> None:
    import kubernetes_validate

    (deployment,) = by_kind(rendered, "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    probe = broken["spec"]["template"]["spec"]["containers"][0].pop("readinessProbe")
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = probe
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def check_compose(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                           "vendor.compose-spec", str(path)], capture_output=True, text=True,
                          timeout=120)


def test_compose_file_validates_against_the_compose_spec(tmp_path: Path) -> None:
    done = check_compose(COMPOSE)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = compose()
    broken["services"]["redis"]["healthcheck"]["intervall"] = "5s"
    (tmp_path / "docker-compose.yml").write_text(yaml.safe_dump(broken))
    assert check_compose(tmp_path / "docker-compose.yml").returncode != 0


# -- the Deployment ---------------------------------------------------------------------------


def test_probes_use_paths_the_app_serves_on_the_port_the_command_listens_on(
        rendered: list[dict[str, Any]], container: dict[str, Any], tmp_path: Path) -> None:
    readiness, liveness = container["readinessProbe"], container["livenessProbe"]
    assert readiness["httpGet"]["path"] == "/ready"
    assert liveness["httpGet"]["path"] == "/health"
    probes = [container[p] for p in ("readinessProbe", "livenessProbe", "startupProbe")]
    assert {p["httpGet"]["path"] for p in probes} <= app_paths()
    settings = pod_settings(rendered, container, tmp_path)
    listens = settings.server.port
    assert {port_number(container, p["httpGet"]["port"]) for p in probes} == {listens}
    assert settings.server.host == "0.0.0.0"
    # the image's own port agrees: EXPOSE and its env
    assert final_stage(dockerfile(), "EXPOSE") == [str(listens)]
    assert image_env()["LLMROUTE__SERVER__PORT"] == str(listens)
    # the Service sends traffic there; the metrics listener is a container port, not in it
    (service,) = by_kind(rendered, "Service")
    assert [port_number(container, p["targetPort"]) for p in service["spec"]["ports"]] == [listens]
    assert settings.server.metrics.port == port_number(container, "metrics")


def test_grace_period_covers_the_prestop_sleep_and_the_drain(
        rendered: list[dict[str, Any]], pod: dict[str, Any], container: dict[str, Any],
        tmp_path: Path) -> None:
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop = float(command[1])
    settings = pod_settings(rendered, container, tmp_path)
    drain = settings.server.graceful_shutdown_s + settings.ledger.close_timeout_s
    assert pre_stop > 0
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + drain
    # compose stops the container with the same budget (no preStop there)
    for name in ("gateway-1", "gateway-2"):
        assert seconds(compose()["services"][name]["stop_grace_period"]) >= drain


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, duration
    return float(match.group(1))


def test_no_literal_secrets(rendered: list[dict[str, Any]], container: dict[str, Any]) -> None:
    assert by_kind(rendered, "Secret") == []
    refs = {}
    for name, entry in env_of(container).items():
        if SECRET_NAME.search(name):
            assert "value" not in entry, f"{name} has a literal value"
            refs[name] = entry["valueFrom"]["secretKeyRef"]["name"]
    settings = load(None, environ={})
    provider_keys = {p.api_key_env for p in settings.providers.values() if p.api_key_env}
    config = yaml.safe_load(by_kind(rendered, "ConfigMap")[0]["data"]["llmroute.yaml"])
    gateway_keys = {k["key_env"] for k in config["keys"]}
    assert all("hash" not in k for k in config["keys"])
    assert provider_keys | gateway_keys | {"LLMROUTE__LEDGER__URL", "LLMROUTE_SESSION_SECRET"} \
        <= set(refs)
    # compose: the same names come from the env file, never from the file itself
    for name in ("gateway-1", "gateway-2"):
        service = compose()["services"][name]
        for key, value in service["environment"].items():
            if SECRET_NAME.search(key):
                # the password is interpolated from the env file: postgresql://user:${...}@host
                assert re.match(r"postgresql://[^:@]+:\$\{POSTGRES_PASSWORD[^}]*\}@", value), \
                    f"{key} holds a literal secret"
        assert service["env_file"] == "deploy/compose.env"
    password = compose()["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert password.startswith("${POSTGRES_PASSWORD")
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "deploy/compose.env" in ignored


def test_runs_as_the_images_non_root_user_on_a_read_only_root(
        rendered: list[dict[str, Any]], pod: dict[str, Any], container: dict[str, Any],
        tmp_path: Path) -> None:
    (user,) = final_stage(dockerfile(), "USER")
    uid, gid = (int(part) for part in user.split(":"))
    assert uid != 0 and gid != 0
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (uid, gid)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    # every place the gateway writes is a volume: the spool + WAL directory and /tmp
    settings = pod_settings(rendered, container, tmp_path)
    mounts = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    assert str(Path(settings.ledger.spool_path).parent) in mounts
    assert "/tmp" in mounts
    # the config is the ConfigMap, mounted where LLMROUTE_CONFIG points
    config_dir = str(Path(plain_env(container)["LLMROUTE_CONFIG"]).parent)
    (config_mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == config_dir]
    (volume,) = [v for v in pod["volumes"] if v["name"] == config_mount["name"]]
    assert volume["configMap"]["name"] == by_kind(rendered, "ConfigMap")[0]["metadata"]["name"]


def test_two_replicas_autoscaled_on_cpu_and_kept_through_disruptions(
        rendered: list[dict[str, Any]], container: dict[str, Any]) -> None:
    (deployment,) = by_kind(rendered, "Deployment")
    (hpa,) = by_kind(rendered, "HorizontalPodAutoscaler")
    (pdb,) = by_kind(rendered, "PodDisruptionBudget")
    assert deployment["spec"]["replicas"] == 2
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] >= 2
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert "cpu" in container["resources"]["requests"]  # utilization is relative to it
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]
    (service,) = by_kind(rendered, "Service")
    assert service["spec"]["selector"].items() <= labels.items()


# -- the image --------------------------------------------------------------------------------


def test_dockerfile_builds_small_reproducible_and_checks_health() -> None:
    instructions = dockerfile()
    bases = [i.argument for i in instructions if i.keyword == "FROM"]
    assert len(bases) == 2 and all(b.startswith("python:3.11-slim") for b in bases)
    runs = " ".join(i.argument for i in instructions if i.keyword == "RUN")
    assert 'pip install -c constraints.txt ".[postgres${EXTRAS:+,$EXTRAS}]"' in runs
    args = [i.argument for i in instructions if i.keyword == "ARG"]
    assert 'EXTRAS=""' in args  # the default image: PostgreSQL only; extras opt in
    assert image_cmd() == ["llmroute", "serve"]
    assert final_stage(instructions, "STOPSIGNAL") == ["SIGTERM"]
    (health,) = final_stage(instructions, "HEALTHCHECK")
    probe = exec_form(health.split(" CMD ", 1)[1])
    paths = set(re.findall(r"'(/[a-z]+)'", " ".join(probe)))
    assert paths == {"/health"} and paths <= app_paths()
    ignored = [line for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line and not line.startswith("#")]
    assert ignored[0] == "*" and "!src/" in ignored


# -- compose ----------------------------------------------------------------------------------


def test_compose_runs_two_gateways_on_one_redis_and_one_postgres(tmp_path: Path) -> None:
    services = compose()["services"]
    gateways = {name: s for name, s in services.items() if s.get("image", "").startswith("llmroute")}
    assert sorted(gateways) == ["gateway-1", "gateway-2"]
    assert [n for n, s in services.items() if s.get("image", "").startswith("redis")] == ["redis"]
    assert [n for n, s in services.items()
            if s.get("image", "").startswith("postgres")] == ["postgres"]
    configs = set()
    for service in gateways.values():
        env = service["environment"]
        assert env["LLMROUTE__STATE__URL"] == "redis://redis:6379/0"
        assert env["LLMROUTE__LEDGER__URL"].startswith("postgresql://")
        assert env["LLMROUTE__LEDGER__URL"].endswith("@postgres:5432/llmroute")
        assert service["depends_on"] == {"postgres": {"condition": "service_healthy"},
                                         "redis": {"condition": "service_healthy"}}
        (config,) = [v for v in service["volumes"] if v.endswith(":" + env["LLMROUTE_CONFIG"] + ":ro")]
        configs.add(config.split(":")[0])
        assert service["read_only"] is True
    assert len(configs) == 1  # the same config, the one the Kubernetes ConfigMap holds
    path = ROOT / configs.pop()
    assert path == ROOT / "deploy" / "k8s" / "base" / "llmroute.yaml"
    settings = load(path, environ={})
    # Prometheus scrapes both gateways on their metrics listener
    scrape = yaml.safe_load(PROMETHEUS.read_text())
    (job,) = scrape["scrape_configs"]
    (targets,) = [c["targets"] for c in job["static_configs"]]
    assert sorted(targets) == [f"{g}:{settings.server.metrics.port}" for g in sorted(gateways)]
    assert all(str(settings.server.metrics.port) not in " ".join(s.get("ports", []))
               for s in services.values())  # the keyless metrics port is never published
    # the load balancer reaches both
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert all(f"server {g}:{settings.server.port}" in nginx for g in gateways)
