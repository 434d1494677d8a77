"""Static checks of deploy/ (there is no Docker engine or cluster here): everything parses,
every command is a real ``rating-engine`` subcommand with real flags, every setting is one the
code reads (with a value it accepts), image names and ports agree, probes hit real paths."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.cli import build_parser
from engine.stream.health import LIVENESS_PATH, PATHS, READINESS_PATH
from engine.stream.settings import WorkerSettings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"rating-engine:{VERSION}"


@dataclass
class Container:
    """An engine container, wherever it is declared: its argv and environment."""

    where: str
    argv: list[str]
    env: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)
    probes: dict[str, dict[str, Any]] = field(default_factory=dict)
    mounts: dict[str, str] = field(default_factory=dict)  # mount path -> volume name


def _yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in {".yml", ".yaml"})


def _k8s_docs() -> list[dict[str, Any]]:
    """Every resource the kustomization applies."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = []
    for name in kustomization["resources"]:
        docs.extend(d for d in yaml.safe_load_all((K8S / name).read_text()) if d)
    return docs


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def _dockerfile_entrypoint() -> list[str]:
    text = (DEPLOY / "Dockerfile").read_text()
    match = re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M)
    assert match, "the Dockerfile has no exec-form ENTRYPOINT"
    entry: list[str] = json.loads(match.group(1))
    return entry


def _configmap(name: str) -> dict[str, str]:
    for doc in _k8s_docs():
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == name:
            data: dict[str, str] = doc["data"]
            return data
    raise AssertionError(f"no ConfigMap {name}")


def compose_containers() -> Iterator[Container]:
    entry = _dockerfile_entrypoint()
    for name, service in _compose()["services"].items():
        if not service.get("image", "").startswith("rating-engine"):
            continue
        command = service.get("command", [])
        assert isinstance(command, list), f"compose {name}: give command as a list"
        env = {k: str(v) for k, v in service.get("environment", {}).items()}
        yield Container(f"compose {name}", [*service.get("entrypoint", entry), *command], env)


def k8s_containers() -> Iterator[Container]:
    for doc in _k8s_docs():
        spec = doc.get("spec", {})
        pod = spec.get("template", {}).get("spec")
        if pod is None:
            continue
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for claim in spec.get("volumeClaimTemplates", []):
            volumes[claim["metadata"]["name"]] = {"claim": claim}
        for c in pod["containers"]:
            if not c["image"].startswith("rating-engine"):
                continue
            env: dict[str, str] = {}
            for source in c.get("envFrom", []):
                env.update(_configmap(source["configMapRef"]["name"]))
            for item in c.get("env", []):
                env[item["name"]] = item.get("value", "<from secret>")
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            assert set(mounts.values()) <= set(volumes), f"{doc['metadata']['name']}: volume?"
            yield Container(
                f"k8s {doc['kind']} {doc['metadata']['name']}/{c['name']}",
                [*c.get("command", []), *c.get("args", [])],
                env,
                {p["name"]: p["containerPort"] for p in c.get("ports", [])},
                {k: c[k] for k in ("startupProbe", "livenessProbe", "readinessProbe") if k in c},
                mounts,
            )


def all_containers() -> list[Container]:
    return [*compose_containers(), *k8s_containers()]


def _parse(argv: list[str]) -> Any:
    assert argv[0] == "rating-engine", argv
    try:
        return build_parser().parse_args(argv[1:])
    except SystemExit as exc:
        raise AssertionError(f"not a valid rating-engine command line: {argv}") from exc


def _names_read_by_the_code() -> set[str]:
    """Every RATING_* / KAFKA_* name the engine's sources mention, the local stack aside
    (``engine/local``: how a laptop gets its broker, ``KAFKA_PROVIDER`` and ``KAFKA_IMAGE``,
    documented in the README's "Kafka, locally", and the env of its Docker broker)."""
    names: set[str] = set()
    for path in (REPO / "engine").rglob("*.py"):
        if "local" not in path.relative_to(REPO / "engine").parts:
            names.update(re.findall(r"[\"']((?:RATING|KAFKA)_[A-Z0-9_]+)[\"']", path.read_text()))
    return names


def test_every_yaml_file_parses() -> None:
    files = _yaml_files()
    assert len(files) >= 10
    for path in files:
        docs = list(yaml.safe_load_all(path.read_text()))
        assert docs and all(d is not None for d in docs), path


def test_the_kustomization_applies_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(files)


def test_the_containers_are_found() -> None:
    where = [c.where for c in all_containers()]
    assert {"compose worker", "compose sink", "compose topics"} <= set(where)
    assert "k8s StatefulSet rating-worker/worker" in where
    assert "k8s Deployment rating-sink/sink" in where


@pytest.mark.parametrize("container", all_containers(), ids=lambda c: c.where)
def test_every_command_is_a_real_subcommand(container: Container) -> None:
    args = _parse(container.argv)
    assert callable(args.func)
    # Every $(VAR) Kubernetes expands in the arguments is defined for the container.
    for var in re.findall(r"\$\((\w+)\)", " ".join(container.argv)):
        assert var in container.env, f"{container.where}: $({var}) is not set"


@pytest.mark.parametrize("container", all_containers(), ids=lambda c: c.where)
def test_every_setting_is_one_the_code_reads(container: Container) -> None:
    known = _names_read_by_the_code()
    assert {"KAFKA_BOOTSTRAP", "RATING_METRICS_PORT", "RATING_TOPICS"} <= known
    ours = {k for k in container.env if k.startswith(("RATING_", "KAFKA_"))}
    assert ours - known == set(), f"{container.where} sets variables the code never reads"
    if _parse(container.argv).command == "worker":
        # The worker accepts every value: its one settings object converts them.
        WorkerSettings.from_env("catalog.yaml", environ=container.env)


def test_one_image_name_everywhere() -> None:
    images = {s["image"] for s in _compose()["services"].values() if "rating-engine" in s["image"]}
    for doc in _k8s_docs():
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        images.update(c["image"] for c in pod.get("containers", []) if "rating" in c["image"])
    assert images == {IMAGE}
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["images"] == [{"name": "rating-engine", "newTag": VERSION}]
    assert f"-t {IMAGE}" in (DEPLOY / "Dockerfile").read_text()
    assert f"-t {IMAGE}" in (DEPLOY / "compose.yaml").read_text()
    assert _dockerfile_entrypoint() == ["rating-engine"]


def _metrics_port(container: Container) -> int:
    args = _parse(container.argv)
    if args.command == "worker":
        return WorkerSettings.from_env("c", environ=container.env).metrics_port
    port: int = args.metrics_port
    return port


def test_ports_agree_with_the_settings_and_prometheus() -> None:
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    scraped = {j["job_name"]: j["dns_sd_configs"][0] for j in scrape["scrape_configs"][:2]}
    compose = _compose()["services"]
    for container in compose_containers():
        service = container.where.split()[-1]
        command = _parse(container.argv).command
        if command not in ("worker", "sink"):
            continue
        job = scraped[f"rating-{command}"]
        port = _metrics_port(container)
        assert job["names"] == [service]
        assert job["port"] == port, container.where
        health = compose[service]["healthcheck"]["test"]
        assert f"http://127.0.0.1:{port}{LIVENESS_PATH}" in " ".join(health)
    docs = {(d["kind"], d["metadata"]["name"]): d for d in _k8s_docs()}
    for container in k8s_containers():
        command = _parse(container.argv).command
        if command not in ("worker", "sink"):
            continue
        port = _metrics_port(container)
        assert container.ports == {"metrics": port}, container.where
        service = docs[("Service", f"rating-{command}")]
        assert service["spec"]["ports"][0]["port"] == port
        assert service["metadata"]["annotations"]["prometheus.io/port"] == str(port)


@pytest.mark.parametrize("container", list(k8s_containers()), ids=lambda c: c.where)
def test_probes_hit_the_health_server(container: Container) -> None:
    if _parse(container.argv).command not in ("worker", "sink"):
        return
    assert set(container.probes) == {"startupProbe", "livenessProbe", "readinessProbe"}
    for probe in container.probes.values():
        assert probe["httpGet"]["path"] in PATHS
        assert probe["httpGet"]["port"] == "metrics"
    assert container.probes["livenessProbe"]["httpGet"]["path"] == LIVENESS_PATH
    assert container.probes["readinessProbe"]["httpGet"]["path"] == READINESS_PATH


def test_workers_keep_rocksdb_on_a_volume_and_everything_has_resources() -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in _k8s_docs()}
    worker = docs[("StatefulSet", "rating-worker")]
    claims = [c["metadata"]["name"] for c in worker["spec"]["volumeClaimTemplates"]]
    (container,) = [c for c in k8s_containers() if "rating-worker" in c.where]
    data_dir = str(WorkerSettings.from_env("c", environ=container.env).data_dir)
    assert container.mounts[data_dir] in claims
    for doc in docs.values():
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        for c in pod.get("containers", []):
            assert {"requests", "limits"} <= set(c["resources"]), doc["metadata"]["name"]


def test_configmaps_hold_the_repository_files_where_the_code_looks() -> None:
    catalog = _configmap("rating-catalog")
    topics = _configmap("rating-topics")
    assert catalog == {"catalog.yaml": (REPO / "examples" / "catalog.yaml").read_text()}
    assert topics == {"topics.yaml": (REPO / "topics.yaml").read_text()}
    for container in k8s_containers():
        mounts = container.mounts
        topics_path = Path(container.env["RATING_TOPICS"])
        assert mounts[str(topics_path.parent)] == "topics", container.where
        args = _parse(container.argv)
        if getattr(args, "catalog", None):
            assert mounts[str(Path(args.catalog).parent)] == "catalog", container.where


def test_the_image_installs_exactly_the_runtime_lock() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert "COPY pyproject.toml README.md requirements-runtime.txt requirements-build.txt" in text
    assert "-r requirements-runtime.txt -r requirements-build.txt" in text
    # The engine is built by the locked backend, never one resolved at build time.
    assert "pip install --no-cache-dir --no-deps --no-build-isolation ." in text
    # The engine itself must not pull in anything the lock did not name.
    installs = re.findall(r"pip install [^\\\n]*", text)
    assert installs and all("--no-deps" in line for line in installs), installs
