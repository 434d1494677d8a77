"""Every image the deployment and the local tools name is pinned to an exact version: a
floating tag (``latest``, ``15``, ``3.11-slim-bookworm``) lets a rebuild or a ``docker compose
pull`` bring a release nobody tested. The engine's image runs the Python the lock is resolved
for."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator

import pytest

from engine.local.broker import DEFAULT_TESTCONTAINERS_IMAGE

from .test_manifests import DEPLOY, REPO, _compose, _k8s_docs

EXACT_PARTS = {
    "python": 3,  # 3.11.7
    "postgres": 2,  # 15.20: since PostgreSQL 10, major.minor is the whole version
    "clickhouse/clickhouse-server": 4,  # 24.8.14.39
    "apache/kafka": 3,
    "confluentinc/cp-kafka": 3,
    "prom/prometheus": 3,
    "grafana/grafana": 3,
    "rating-engine": 3,
}
"""How many numbers an exact version of each image has; an image not named here is refused
until it is (with the number of parts its releases have)."""

TAG = re.compile(r"v?(?P<version>[0-9]+(?:\.[0-9]+)*)(?:-[a-z0-9][a-z0-9.-]*)?")
"""A version, with an optional leading ``v`` and a variant after it (``-slim-bookworm``)."""


def floating(image: str) -> str | None:
    """Why ``image`` is not pinned to an exact version, or None where it is."""
    name, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:
        return "no tag (it means latest)"
    if name not in EXACT_PARTS:
        return f"{name}: not in EXACT_PARTS"
    match = TAG.fullmatch(tag)
    if match is None:
        return f"tag {tag!r} is no version"
    parts = len(match["version"].split("."))
    if parts != EXACT_PARTS[name]:
        return f"tag {tag!r} has {parts} version parts, an exact {name} has {EXACT_PARTS[name]}"
    return None


def images() -> Iterator[tuple[str, str]]:
    """(where, image) for every image named: the Dockerfile's base, each compose service,
    each Kubernetes container, the local stack's default Docker broker."""
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    for base in re.findall(r"^FROM\s+(\S+)", dockerfile, re.M):
        yield "deploy/Dockerfile", base
    for name, service in _compose()["services"].items():
        yield f"compose {name}", service["image"]
    for doc in _k8s_docs():
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        for c in [*pod.get("initContainers", []), *pod.get("containers", [])]:
            yield f"k8s {doc['kind']} {doc['metadata']['name']}/{c['name']}", c["image"]
    yield "engine/local/broker.py", DEFAULT_TESTCONTAINERS_IMAGE


def test_every_image_is_pinned_to_an_exact_version() -> None:
    found = list(images())
    assert {where for where, _ in found} >= {"deploy/Dockerfile", "compose postgres"}
    loose = {where: (image, why) for where, image in found if (why := floating(image))}
    assert loose == {}


@pytest.mark.parametrize(
    "image",
    [
        "postgres",
        "postgres:latest",
        "postgres:15",
        "postgres:15-bookworm",
        "python:3.11-slim-bookworm",
        "clickhouse/clickhouse-server:24.8",
        "grafana/grafana:11",
        "busybox:1.36.1",
    ],
)
def test_a_floating_or_unknown_tag_is_refused(image: str) -> None:
    assert floating(image) is not None


def test_the_image_runs_the_python_the_lock_is_resolved_for() -> None:
    (base,) = re.findall(r"^FROM\s+python:(\S+)", (DEPLOY / "Dockerfile").read_text(), re.M)
    major_minor = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"][
        "python_version"
    ]
    assert base.startswith(f"{major_minor}.") and base.endswith("-slim-bookworm"), base
    assert f"--python {major_minor}" in (REPO / "Makefile").read_text()
