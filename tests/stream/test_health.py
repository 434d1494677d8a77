"""Liveness and readiness: the probes deploy manifests point at."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter

from engine.local import free_ports
from engine.stream.health import Health, HealthServer, serve, worker_readiness
from engine.stream.metrics import Metrics, SinkMetrics

from .harness import Stack


def _get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server() -> Iterator[tuple[HealthServer, FakeClock]]:
    clock = FakeClock()
    registry = CollectorRegistry()
    Counter("probe_things", "Things.", registry=registry).inc(3)
    s = serve(0, registry, Health(stale_after=10, clock=clock), host="127.0.0.1")
    yield s, clock
    s.close()


def test_liveness_follows_the_heartbeat(server: tuple[HealthServer, FakeClock]) -> None:
    s, clock = server
    assert _get(s.port, "/healthz")[0] == 200  # starting up counts as alive
    clock.now += 9
    assert _get(s.port, "/healthz")[0] == 200
    clock.now += 2
    status, body = _get(s.port, "/healthz")
    assert status == 503
    assert "no heartbeat for 11s" in json.loads(body)["reason"]
    s.health.beat()
    assert _get(s.port, "/healthz")[0] == 200


def test_readiness_reports_its_reason(server: tuple[HealthServer, FakeClock]) -> None:
    s, _ = server
    status, body = _get(s.port, "/readyz")
    assert (status, json.loads(body)) == (503, {"ready": False, "reason": "starting"})
    s.health.ready("recovering wallet partitions 2")
    assert json.loads(_get(s.port, "/readyz")[1])["reason"] == "recovering wallet partitions 2"
    s.health.ready(None)
    assert _get(s.port, "/readyz") == (200, b'{"ready":true}\n')


def test_metrics_and_unknown_paths(server: tuple[HealthServer, FakeClock]) -> None:
    s, _ = server
    status, body = _get(s.port, "/metrics")
    assert status == 200
    assert b"probe_things_total 3.0" in body
    assert _get(s.port, "/metrics?x=1")[0] == 200
    status, body = _get(s.port, "/nope")
    assert status == 404
    assert "/readyz" in json.loads(body)["error"]


def test_both_processes_serve_their_own_registry() -> None:
    for metrics, name in (
        (Metrics(), b"rating_cdrs_received_total"),
        (SinkMetrics(), b"rating_sink_records_total"),
    ):
        s = metrics.serve(0)
        try:
            assert name in _get(s.port, "/metrics")[1]
            assert _get(s.port, "/readyz")[0] == 503
            assert _get(s.port, "/healthz")[0] == 200
        finally:
            s.close()


def test_worker_readiness_rules() -> None:
    recovered = {0, 1}.__contains__
    assert worker_readiness(True, {0}, recovered) is not None
    assert worker_readiness(False, set(), recovered) == "no wallet partitions assigned"
    assert worker_readiness(False, {3, 0, 2}, recovered) == "recovering wallet partitions 2, 3"
    assert worker_readiness(False, {0, 1}, recovered) is None


def test_a_worker_becomes_ready_once_its_partitions_are_recovered(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    stack = Stack(kafka_bootstrap, tmp_path)
    port = free_ports(1)[0]
    stack.start_worker("--metrics-port", str(port))
    seen: list[tuple[int, str]] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                status, body = _get(port, "/readyz")
            except OSError:  # not listening yet
                time.sleep(0.1)
                continue
            seen.append((status, json.loads(body).get("reason", "")))
            if status == 200:
                break
            time.sleep(0.1)
        assert seen and seen[0][0] == 503, seen
        assert seen[-1] == (200, ""), seen
        assert _get(port, "/healthz")[0] == 200
        metrics = _get(port, "/metrics")[1].decode()
        partitions = stack.topics.wallet_events.partitions
        assert f"rating_partitions_owned {float(partitions)}" in metrics
        assert "rating_partitions_recovering 0.0" in metrics
        # Ready: its heap is frozen (garbage.py) and every collection so far was timed.
        deadline = time.monotonic() + 10
        while "rating_gc_frozen_objects 0.0" in metrics and time.monotonic() < deadline:
            time.sleep(0.2)
            metrics = _get(port, "/metrics")[1].decode()
        frozen = re.search(r"^rating_gc_frozen_objects (\S+)$", metrics, re.M)
        assert frozen and float(frozen.group(1)) > 0, metrics
        full = re.search(r'^rating_gc_pause_seconds_count\{generation="2"\} (\S+)$', metrics, re.M)
        assert full and float(full.group(1)) >= 1  # the freeze's own collection at least
        # A planned stop ends cleanly: its clients are closed on the way out (runner.py).
        assert stack.stop_worker() == 0, stack.logs()
    finally:
        stack.stop_worker()
