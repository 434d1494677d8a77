"""A broker outage of a minute under a running worker and sink: both stay up, the worker
reports not ready while its decisions wait for the broker, and afterwards the stored events
equal the offline run, each once, chains intact."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import msgspec
import pytest
from confluent_kafka import Producer

from engine.local import LocalJarBroker
from engine.store import open_store
from engine.stream.publisher import iccid_key

from .harness import Stack, hold, offline_events_by_wallet, probe, wait_for
from .test_worker import _dataset, _offline, _publish_commands_first

pytestmark = pytest.mark.chaos

OUTAGE = 60.0
"""Seconds the broker is away: the worker must ride out at least this long."""


def publish_slowly(bootstrap: str, topic: str, lines: list[bytes]) -> None:
    """CDRs at about 500 a second, in file order, by a producer that waits out the outage
    (the operators' side is not under test: its records must all arrive)."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "message.timeout.ms": 300_000,
            "log_level": 0,
        }
    )
    for n, line in enumerate(lines, 1):
        producer.produce(topic, line, iccid_key(line))
        if n % 50 == 0:
            producer.poll(0)
            time.sleep(0.1)
    assert producer.flush(300) == 0


def test_worker_and_sink_ride_out_a_minute_without_the_broker(
    outage_broker: LocalJarBroker, tmp_path: Path
) -> None:
    bootstrap = outage_broker.start()
    stack = Stack(bootstrap, tmp_path)
    cdrs, commands = _dataset(tmp_path, 4000, seed=31)
    offline_events, _ = _offline(tmp_path, cdrs, commands)
    expected = offline_events_by_wallet(offline_events)
    total = sum(len(v) for v in expected.values())

    worker = stack.start_worker("--snapshot-every", "1", metrics=True)
    url = f"sqlite:///{tmp_path / 'events.db'}"
    store = open_store(url)
    sink = stack.start_sink(url, "--group", f"sink-{uuid.uuid4().hex[:6]}", "--batch-size", "5")
    ready: list[int] = []  # the worker's readiness during the outage
    lines = [x for x in cdrs.read_bytes().splitlines() if x.strip()]
    publisher = threading.Thread(
        target=publish_slowly, args=(bootstrap, stack.topics.cdr_raw.name, lines), daemon=True
    )
    try:
        _publish_commands_first(stack, commands)
        publisher.start()
        # Mid-stream: CDRs are arriving, being decided and stored.
        wait_for(lambda: store.position() > total // 4, 120, sink, every=0.05)
        outage_broker.halt(kill=True)
        stopped_at = store.position()
        end = time.monotonic() + OUTAGE
        while time.monotonic() < end:
            assert stack.worker is not None and stack.worker.poll() is None, stack.logs()
            probe(worker, ready)
            hold(1.0, sink)
        outage_broker.resume()
        publisher.join(timeout=300)
        assert not publisher.is_alive()
        wait_for(lambda: store.position() >= total, 240, sink)
        assert stopped_at < total, "the run ended before the outage: nothing was tested"
        assert stack.worker is not None and stack.worker.poll() is None, stack.logs()
        assert 503 in ready, ready
        deadline = time.monotonic() + 60
        while worker.get("/readyz")[0] != 200:
            assert time.monotonic() < deadline, worker.get("/readyz")
            time.sleep(0.5)
        metrics = worker.get("/metrics")[1]
        assert 'rating_retries_total{component="kafka"' in metrics, metrics
        logs = stack.logs()
        assert "Kafka unavailable" in logs and "Kafka back after" in logs
        # One line when the outage begins and one when it ends, not one per attempt (the
        # Kafka client alone would log dozens a second).
        assert logs.count("[ERROR]") < 100, logs.count("[ERROR]")
        assert "Traceback" not in logs
        time.sleep(3)  # anything late (a repeated decision) would show now
        assert sink.stop() == 0, sink.text()
    finally:
        publisher.join(timeout=300)
        sink.kill()
        stack.stop_worker()

    stored: dict[str, list[bytes]] = {}
    for wallet in store.wallets():
        stored[wallet] = [
            msgspec.json.encode(msgspec.json.decode(e.payload), order="sorted")
            for e in store.read_stream(wallet)
        ]
    assert {w: len(v) for w, v in stored.items()} == {w: len(v) for w, v in expected.items()}
    for wallet in expected:
        assert stored[wallet] == expected[wallet], f"events of {wallet} differ after the outage"
    assert store.verify() == []
    store.close()
