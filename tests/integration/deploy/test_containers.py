"""Docker and Kubernetes files, checked offline: no Docker engine or cluster runs here, nothing is built or applied.

hadolint lints the Dockerfile, the compose file is validated against the
compose-spec schema, the manifests against Kubernetes' OpenAPI schemas
(kubernetes-validate, strict: unknown fields are errors), and every mepd.toml
they carry passes this checkout's `mepd --check-config`.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import ROOT
from tests.integration.deploy.tools import VENV_BIN, run, tool

DOCKER = ROOT / "packaging" / "docker"
KUBE = ROOT / "packaging" / "kubernetes"
MANIFESTS = sorted(KUBE.rglob("*.yaml"))


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def check_config(text: str, tmp_path: Path) -> None:
    path = tmp_path / "mepd.toml"
    path.write_text(text)
    result = run(str(VENV_BIN / "mepd"), "--check-config", str(path))
    assert (result.returncode, result.stdout) == (0, "ok\n"), result.stderr


def test_hadolint_passes() -> None:
    result = run(tool("hadolint"), "--failure-threshold", "info", str(DOCKER / "Dockerfile"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_catch_a_root_image(tmp_path: Path) -> None:
    """The lint is real: the same Dockerfile ending as root is reported."""
    text = (DOCKER / "Dockerfile").read_text().replace("USER 10514:10514", "USER root")
    bad = tmp_path / "Dockerfile"
    bad.write_text(text)
    result = run(tool("hadolint"), str(bad))
    assert result.returncode != 0
    assert "DL3002" in result.stdout


def test_dockerfile_runs_unprivileged_with_a_healthcheck() -> None:
    lines = [ln.strip() for ln in (DOCKER / "Dockerfile").read_text().splitlines()]
    assert sum(ln.startswith("FROM ") for ln in lines) == 2
    assert [ln for ln in lines if ln.startswith("USER ")] == ["USER 10514:10514"]
    assert 'HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["mepctl", "status"]' in lines
    assert "EXPOSE 5514/udp 5514/tcp 8080/tcp" in lines
    assert 'VOLUME ["/var/lib/mepd"]' in lines


def test_compose_file_matches_the_compose_spec() -> None:
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                 str(DOCKER / "docker-compose.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["mepd.toml", "mepd-compose.toml"])
def test_container_configs_are_valid(name: str, tmp_path: Path) -> None:
    text = (DOCKER / name).read_text()
    check_config(text, tmp_path)
    ports = {entry["address"] for entry in tomllib.loads(text)["syslog"]["listen"]}
    assert ports == {"0.0.0.0:5514"}


def test_kubernetes_manifests_match_the_schemas() -> None:
    assert len(MANIFESTS) == 6
    result = run(tool("kubernetes-validate"), "--strict", *map(str, MANIFESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed for resource") == 7


def test_kubernetes_validation_rejects_an_unknown_field(tmp_path: Path) -> None:
    bad = tmp_path / "daemonset.yaml"
    bad.write_text((KUBE / "node" / "daemonset.yaml").read_text().replace("hostPort: 514", "hostPorts: 514"))
    result = run(tool("kubernetes-validate"), "--strict", str(bad))
    assert result.returncode != 0


@pytest.mark.parametrize("variant", ["node", "central"])
def test_configmaps_are_valid_and_wired_to_the_pods(variant: str, tmp_path: Path) -> None:
    objects = {(doc["kind"], doc["metadata"]["name"]): doc
               for path in (KUBE / variant).glob("*.yaml") for doc in documents(path)}
    configmaps = [doc for (kind, _), doc in objects.items() if kind == "ConfigMap"]
    assert len(configmaps) == 1
    text = configmaps[0]["data"]["mepd.toml"]
    check_config(text, tmp_path)
    workload = next(doc for (kind, _), doc in objects.items() if kind in ("DaemonSet", "Deployment"))
    pod = workload["spec"]["template"]["spec"]
    config_volume = next(v for v in pod["volumes"] if v["name"] == "config")
    assert config_volume["configMap"]["name"] == configmaps[0]["metadata"]["name"]
    container = pod["containers"][0]
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert "limits" in container["resources"]
    # The pod's ports are the ones the config listens on.
    ports = {(p["protocol"].lower(), p["containerPort"]) for p in container["ports"]}
    listens = tomllib.loads(text)["syslog"]["listen"]
    assert ports == {(entry["proto"], int(entry["address"].rsplit(":", 1)[1])) for entry in listens}
    services = [doc for (kind, _), doc in objects.items() if kind == "Service"]
    names = {p["name"] for p in container["ports"]}
    for service in services:
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= names
        assert service["spec"]["selector"].items() <= workload["spec"]["template"]["metadata"]["labels"].items()


def test_node_variant_reads_the_journal_read_only() -> None:
    pod = documents(KUBE / "node" / "daemonset.yaml")[0]["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    for path in ("/var/log/journal", "/run/log/journal", "/etc/machine-id"):
        assert mounts[path]["readOnly"] is True
