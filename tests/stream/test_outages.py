"""Outages under a running sink process: the broker killed and started again, PostgreSQL
stopped and started again, mid-stream. The sink waits them out (not ready meanwhile, the
retries counted) and, with no restart of its own, ends with every event stored exactly
once, chains intact, and the same events per wallet as the offline run.

The broker of these tests is a dedicated one (``outage_broker``), so stopping it does not
disturb the session's broker; PostgreSQL is a dedicated server for the same reason.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from support.postgres import RestartableServer

from engine.codec import Decision
from engine.local import LocalJarBroker, LocalStack, Process
from engine.store import StoreUnavailable, open_store
from engine.store.base import EventStore

from .harness import REPO, hold, private_topics, retries, wait_for
from .test_sink import offline_decisions, publish


@pytest.fixture(scope="module")
def decisions() -> list[Decision]:
    return offline_decisions(3000)


def _stack(bootstrap: str, tmp_path: Path) -> LocalStack:
    return LocalStack(bootstrap, tmp_path, topics_file=private_topics(tmp_path), cwd=REPO)


def start_sink(stack: LocalStack, url: str) -> Process:
    """``rating-engine sink`` in small batches, in a group of its own, serving its probes."""
    group = f"sink-{uuid.uuid4().hex[:6]}"
    return stack.start_sink(url, "--group", group, "--batch-size", "5", metrics=True)


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
    stack = _stack(bootstrap, tmp_path)
    topics = stack.topics
    total = sum(len(d.events) for d in decisions)
    publish(bootstrap, topics.wallet_events.name, decisions)
    url = f"sqlite:///{tmp_path / 'events.db'}"
    store = open_store(url)
    seen: list[int] = []
    sink = start_sink(stack, url)
    try:
        wait_for(lambda: store.position() > 0, 90, sink, seen, every=0.02)
        # The sink has fetched ahead and goes on writing; its next commits find no broker.
        outage_broker.halt(kill=True)
        halted_at = store.position()
        assert halted_at < total, "the sink finished before the outage: nothing was tested"
        hold(20, sink, seen)
        assert 503 in seen, seen
        outage_broker.resume()
        wait_for(lambda: store.position() >= total, 180, sink, seen)
        wait_for(lambda: sink.get("/readyz")[0] == 200, 60, sink, seen)
        assert retries(sink, "kafka") > 0, sink.get("/metrics")[1]
        log = sink.text()
        assert "Kafka unavailable" in log and "Kafka back after" in log
        assert "Traceback" not in log
        assert sink.stop() == 0, sink.text()
    finally:
        sink.kill()
    assert_exact(store, url, decisions)
    store.close()


@pytest.mark.chaos
def test_sink_rides_out_a_postgres_restart(
    kafka_bootstrap: str, decisions: list[Decision], tmp_path: Path
) -> None:
    stack = _stack(kafka_bootstrap, tmp_path)
    topics = stack.topics
    half = len(decisions) // 2
    total = sum(len(d.events) for d in decisions)
    with RestartableServer() as server:
        url = server.url
        publish(kafka_bootstrap, topics.wallet_events.name, decisions[:half])
        store = open_store(url)
        seen: list[int] = []
        sink = start_sink(stack, url)
        try:
            wait_for(lambda: position(store) > 0, 90, sink, seen)
            server.stop("fast")  # a planned restart: the server ends every session
            # The rest arrives while the database is away: the sink's appends must wait.
            publish(kafka_bootstrap, topics.wallet_events.name, decisions[half:])
            hold(15, sink, seen)
            assert 503 in seen, seen
            server.start()
            wait_for(lambda: position(store) >= total, 90, sink, seen)
            wait_for(lambda: sink.get("/readyz")[0] == 200, 60, sink, seen)
            assert retries(sink, "store") > 0, sink.get("/metrics")[1]
            log = sink.text()
            assert "the event store unavailable" in log and "the event store back after" in log
            assert "Traceback" not in log
            assert sink.stop() == 0, sink.text()
        finally:
            sink.kill()
        assert_exact(store, url, decisions)
        store.close()


@pytest.mark.chaos
def test_sink_started_while_postgres_is_down_waits_for_it(
    kafka_bootstrap: str, decisions: list[Decision], tmp_path: Path
) -> None:
    stack = _stack(kafka_bootstrap, tmp_path)
    topics = stack.topics
    some = decisions[:300]
    total = sum(len(d.events) for d in some)
    with RestartableServer() as server:
        url = server.url
        server.stop("fast")
        seen: list[int] = []
        sink = start_sink(stack, url)
        try:
            wait_for(lambda: sink.get("/readyz")[0] == 503, 60, sink, seen)
            publish(kafka_bootstrap, topics.wallet_events.name, some)
            hold(5, sink, seen)
            status, body = sink.get("/readyz")
            assert status == 503 and "the event store unavailable" in body, body
            assert sink.get("/healthz")[0] == 200  # alive: an orchestrator lets it wait
            server.start()
            store = open_store(url)
            wait_for(lambda: position(store) >= total, 90, sink, seen)
            assert retries(sink, "store") > 0
            assert "Traceback" not in sink.text()
            assert sink.stop() == 0, sink.text()
        finally:
            sink.kill()
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
