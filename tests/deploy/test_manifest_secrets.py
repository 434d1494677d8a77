"""No deployment passes a secret on a command line: passwords reach the engine through
files mounted from a Kubernetes Secret (or, in the local Compose file, the environment)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from engine.secrets import password_in_url

from .test_manifests import DEPLOY, K8S, _compose, _k8s_docs, _parse, all_containers, k8s_containers


def test_no_command_line_carries_a_password() -> None:
    for container in all_containers():
        for arg in container.argv:
            assert not password_in_url(arg), f"{container.where}: password in {arg!r}"
            # A $(VAR) in the arguments is expanded into the process's command line.
            for var in re.findall(r"\$\((\w+)\)", arg):
                assert not re.search("PASSWORD|SECRET|KEY|URL", var), f"{container.where}: {var}"


def _pods() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for doc in _k8s_docs():
        pod = doc.get("spec", {}).get("template", {}).get("spec")
        if pod is not None:
            out.append((doc["metadata"]["name"], pod))
    return out


def test_k8s_secrets_are_mounted_files_never_arguments_or_plain_env() -> None:
    secrets = {d["metadata"]["name"]: d for d in _k8s_docs() if d["kind"] == "Secret"}
    assert secrets, "no Secret in the kustomization"
    checked = 0
    for name, pod in _pods():
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for c in pod["containers"]:
            mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
            for item in c.get("env", []):
                assert "secretKeyRef" not in item.get("valueFrom", {}), (
                    f"{name}/{c['name']}: {item['name']} puts a secret in the environment; "
                    "mount it as a file"
                )
                if not item["name"].endswith("_FILE"):
                    continue
                path = item["value"]
                directory, _, key = path.rpartition("/")
                mount = mounts.get(directory)
                assert mount is not None, f"{name}: {path} is not on a mounted volume"
                assert mount.get("readOnly") is True, f"{name}: {directory} is writable"
                source = volumes[mount["name"]].get("secret")
                assert source is not None, f"{name}: {directory} is not a Secret volume"
                data = secrets[source["secretName"]].get("stringData", {})
                assert key in data, f"{name}: Secret {source['secretName']} has no {key}"
                checked += 1
    assert checked >= 2  # the sink's PostgreSQL and ClickHouse passwords


def test_the_secret_holds_no_urls() -> None:
    text = (K8S / "secret.yaml").read_text()
    for doc in yaml.safe_load_all(text):
        for value in doc.get("stringData", {}).values():
            assert "://" not in value


def test_compose_passes_passwords_through_the_environment() -> None:
    sink = _compose()["services"]["sink"]
    assert "RATING_EVENT_STORE_PASSWORD" in sink["environment"]
    assert "RATING_CLICKHOUSE_PASSWORD" in sink["environment"]
    assert not any(password_in_url(a) for a in sink["command"])
    assert (DEPLOY / "compose.yaml").exists()


def test_every_k8s_container_logs_in_to_kafka_as_its_own_role() -> None:
    from engine.stream.acls import DEFAULT_PRINCIPALS
    from engine.stream.kafka_security import KafkaSecurity

    users = {}
    for container in k8s_containers():
        env = container.env
        assert env.get("KAFKA_SECURITY_PROTOCOL") == "SASL_SSL", container.where
        assert env["KAFKA_SASL_PASSWORD_FILE"].endswith("/" + env["KAFKA_SASL_USERNAME"])
        assert container.mounts[str(Path(env["KAFKA_SSL_CA_FILE"]).parent)] == "kafka-ca"
        users[_parse(container.argv).command] = env["KAFKA_SASL_USERNAME"]
        settings = {k: v for k, v in env.items() if k.startswith("KAFKA_SASL_") and "FILE" not in k}
        assert KafkaSecurity.from_env(
            {**settings, "KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_PASSWORD": "x"}
        ).sasl
    assert users["worker"] == DEFAULT_PRINCIPALS["worker"].removeprefix("User:")
    assert users["sink"] == DEFAULT_PRINCIPALS["sink"].removeprefix("User:")
    assert users["topics"] not in {p.removeprefix("User:") for p in DEFAULT_PRINCIPALS.values()}
