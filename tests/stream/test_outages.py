"""Outages under a running sink process: the broker killed and started again, PostgreSQL
stopped and started again, mid-stream. The sink waits them out (not ready meanwhile, the
retries counted) and, with no restart of its own, ends with every event stored exactly
once, chains intact, and the same events per wallet as the offline run.

The broker of these tests is a dedicated one (``outage_broker``), so stopping it does not
disturb the session's broker; PostgreSQL is a dedicated server for the same reason.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.codec import Decision
from engine.store import StoreUnavailable, open_store
from engine.store.base import EventStore
from engine.stream.admin import apply_topics
from engine.stream.topics import Topics, load_topics
from engine.testing.kafka_broker import LocalJarBroker, free_ports
from engine.testing.postgres import RestartableServer

from .harness import REPO, private_topics
from .test_sink import offline_decisions, publish


@pytest.fixture(scope="module")
def outage_broker() -> Iterator[LocalJarBroker]:
    """A broker of this module's own, which the tests halt and resume."""
    broker = LocalJarBroker()
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def decisions() -> list[Decision]:
    return offline_decisions(3000)


def _topics(bootstrap: str, tmp_path: Path) -> Topics:
    spec = load_topics(private_topics(tmp_path), environ={})
    assert apply_topics(spec, bootstrap).ok
    return spec


class SinkProcess:
    """``rating-engine sink`` as a process, with its probes and metrics."""

    def __init__(self, bootstrap: str, topics: Topics, url: str, tmp_path: Path) -> None:
        (self.port,) = free_ports(1)
        self.log_path = tmp_path / "sink.log"
        env = {**os.environ, "RATING_TOPICS": topics.source, "KAFKA_BOOTSTRAP": bootstrap}
        argv = [sys.executable, "-m", "engine.cli", "sink", "--store", url]
        argv += ["--group", f"sink-{uuid.uuid4().hex[:6]}", "--batch-size", "5"]
        argv += ["--metrics-port", str(self.port)]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=log, stderr=log)
        self.readiness: list[int] = []

    def get(self, path: str) -> tuple[int, str]:
        try:
            url = f"http://127.0.0.1:{self.port}{path}"
            with urllib.request.urlopen(url, timeout=2) as reply:
                return int(reply.status), reply.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError:
            return 0, ""  # not serving yet

    def probe(self) -> None:
        self.readiness.append(self.get("/readyz")[0])

    def retries(self, component: str) -> float:
        _status, text = self.get("/metrics")
        pattern = rf'^rating_retries_total\{{component="{component}",reason="[^"]+"\}} (\S+)$'
        return sum(float(v) for v in re.findall(pattern, text, re.M))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


def wait_for(
    condition: Callable[[], bool], timeout: float, sink: SinkProcess, every: float = 0.2
) -> None:
    """Poll ``condition`` (probing the sink's readiness meanwhile); fail if the sink exits."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert sink.proc.poll() is None, f"the sink exited:\n{sink.log()}"
        assert time.monotonic() < deadline, (
            f"timed out; sink log:\n{sink.log()}\nmetrics:\n{sink.get('/metrics')[1]}"
        )
        sink.probe()
        time.sleep(every)


def hold(seconds: float, sink: SinkProcess) -> None:
    """Let an outage last ``seconds``, checking the sink stays up and probing it."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert sink.proc.poll() is None, f"the sink exited during the outage:\n{sink.log()}"
        sink.probe()
        time.sleep(0.5)


def position(store: EventStore) -> int:
    """The store's position, or -1 while its server is away (the test's own connection
    is lost in the restart too)."""
    try:
        return store.position()
    except StoreUnavailable:
        return -1


def assert_exact(store: EventStore, url: str, decisions: list[Decision]) -> None:
    """Every event once, each wallet's stream in decision order, chains intact (checked by
    the CLI as an operator would)."""
    ids = [e.event_id for batch in store.read_all() for e in batch]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(e.id for d in decisions for e in d.events)
    for wallet_id in store.wallets():
        mine = [e.id for d in decisions if d.wallet_id == wallet_id for e in d.events]
        assert [e.event_id for e in store.read_stream(wallet_id)] == mine
    inputs = [(i.wallet_id, i.key) for i in store.read_inputs()]
    assert len(inputs) == len(set(inputs))
    verify = subprocess.run(
        [sys.executable, "-m", "engine.cli", "store", "verify", "--store", url],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "intact" in verify.stdout


@pytest.mark.chaos
def test_sink_rides_out_a_broker_outage(
    outage_broker: LocalJarBroker, decisions: list[Decision], tmp_path: Path
) -> None:
    bootstrap = outage_broker.start()
    topics = _topics(bootstrap, tmp_path)
    total = sum(len(d.events) for d in decisions)
    publish(bootstrap, topics.wallet_events.name, decisions)
    url = f"sqlite:///{tmp_path / 'events.db'}"
    store = open_store(url)
    sink = SinkProcess(bootstrap, topics, url, tmp_path)
    try:
        wait_for(lambda: store.position() > 0, 90, sink, every=0.02)
        # The sink has fetched ahead and goes on writing; its next commits find no broker.
        outage_broker.halt(kill=True)
        halted_at = store.position()
        assert halted_at < total, "the sink finished before the outage: nothing was tested"
        hold(20, sink)
        assert 503 in sink.readiness, sink.readiness
        outage_broker.resume()
        wait_for(lambda: store.position() >= total, 180, sink)
        wait_for(lambda: sink.get("/readyz")[0] == 200, 60, sink)
        assert sink.retries("kafka") > 0, sink.get("/metrics")[1]
        log = sink.log()
        assert "Kafka unavailable" in log and "Kafka back after" in log
        assert "Traceback" not in log
        assert sink.stop() == 0, sink.log()
    finally:
        if sink.proc.poll() is None:
            sink.proc.kill()
            sink.proc.wait()
    assert_exact(store, url, decisions)
    store.close()


@pytest.mark.chaos
def test_sink_rides_out_a_postgres_restart(
    kafka_bootstrap: str, decisions: list[Decision], tmp_path: Path
) -> None:
    topics = _topics(kafka_bootstrap, tmp_path)
    half = len(decisions) // 2
    total = sum(len(d.events) for d in decisions)
    with RestartableServer() as server:
        url = server.url
        publish(kafka_bootstrap, topics.wallet_events.name, decisions[:half])
        store = open_store(url)
        sink = SinkProcess(kafka_bootstrap, topics, url, tmp_path)
        try:
            wait_for(lambda: position(store) > 0, 90, sink)
            server.stop("fast")  # a planned restart: the server ends every session
            # The rest arrives while the database is away: the sink's appends must wait.
            publish(kafka_bootstrap, topics.wallet_events.name, decisions[half:])
            hold(15, sink)
            assert 503 in sink.readiness, sink.readiness
            server.start()
            wait_for(lambda: position(store) >= total, 90, sink)
            wait_for(lambda: sink.get("/readyz")[0] == 200, 60, sink)
            assert sink.retries("store") > 0, sink.get("/metrics")[1]
            log = sink.log()
            assert "the event store unavailable" in log and "the event store back after" in log
            assert "Traceback" not in log
            assert sink.stop() == 0, sink.log()
        finally:
            if sink.proc.poll() is None:
                sink.proc.kill()
                sink.proc.wait()
        assert_exact(store, url, decisions)
        store.close()


@pytest.mark.chaos
def test_sink_started_while_postgres_is_down_waits_for_it(
    kafka_bootstrap: str, decisions: list[Decision], tmp_path: Path
) -> None:
    topics = _topics(kafka_bootstrap, tmp_path)
    some = decisions[:300]
    total = sum(len(d.events) for d in some)
    with RestartableServer() as server:
        url = server.url
        server.stop("fast")
        sink = SinkProcess(kafka_bootstrap, topics, url, tmp_path)
        try:
            wait_for(lambda: sink.get("/readyz")[0] == 503, 60, sink)
            publish(kafka_bootstrap, topics.wallet_events.name, some)
            hold(5, sink)
            status, body = sink.get("/readyz")
            assert status == 503 and "the event store unavailable" in body, body
            assert sink.get("/healthz")[0] == 200  # alive: an orchestrator lets it wait
            server.start()
            store = open_store(url)
            wait_for(lambda: position(store) >= total, 90, sink)
            assert sink.retries("store") > 0
            assert "Traceback" not in sink.log()
            assert sink.stop() == 0, sink.log()
        finally:
            if sink.proc.poll() is None:
                sink.proc.kill()
                sink.proc.wait()
        assert_exact(store, url, some)
        store.close()


def test_a_permanent_store_error_stops_the_sink_with_a_message(postgres_url: str) -> None:
    """Waiting cannot create a missing database: exit 1 with the reason, no traceback."""
    url = postgres_url.rsplit("/", 1)[0] + "/no_such_database"
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "sink", "--store", url, "--idle-exit", "1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "no_such_database" in done.stderr and "does not exist" in done.stderr
    assert "Traceback" not in done.stderr
