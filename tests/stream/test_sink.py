"""The sink against a real broker and a real SQLite store: every event stored exactly once,
also when the sink dies between its write and its offset commit."""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import msgspec
import pytest
from confluent_kafka import Producer
from support.postgres import fresh_schema

from engine.catalog import load_catalog
from engine.codec import Decision, Rejected, decode_cdr, encode
from engine.domain import Cdr, Command, Event, WalletState, initial_state
from engine.offline.generate import generate_cdrs
from engine.offline.pipeline import Pipeline
from engine.store import open_store
from engine.store.base import EventStore
from engine.store.snapshots import fold, wallet_state
from engine.stream.admin import apply_topics
from engine.stream.sink import Sink, SinkProgress, SinkSettings
from engine.stream.topics import Topics, load_topics

from .harness import CATALOG, REPO, private_topics


def offline_decisions(cdrs: int) -> list[Decision]:
    """Decision records as a worker would write them, from an offline run."""
    catalog = load_catalog(CATALOG)
    pipeline = Pipeline(catalog, record_inputs=True)
    decisions: list[Decision] = []
    for n, line in enumerate(generate_cdrs(catalog, 400, cdrs, seed=11, days=20)):
        cdr = decode_cdr(line)
        if isinstance(cdr, Rejected):
            continue
        result = pipeline.feed(cdr)
        if isinstance(result, Rejected):
            continue
        decided, pipeline.decided = pipeline.decided, []
        origin = {"origin_topic": "cdr.by-wallet", "origin_offset": n}
        decisions.extend(msgspec.structs.replace(d, **origin) for d in decided)
    return decisions


def publish(bootstrap: str, topic: str, decisions: list[Decision]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for d in decisions:
        producer.produce(topic, encode(d), d.wallet_id.encode())
        producer.poll(0)
    assert producer.flush(30) == 0


@pytest.fixture
def topics(kafka_bootstrap: str, tmp_path: Path) -> Topics:
    spec = load_topics(private_topics(tmp_path), environ={})
    assert apply_topics(spec, kafka_bootstrap).ok
    return spec


@pytest.fixture(scope="module")
def decisions() -> list[Decision]:
    return offline_decisions(1500)


def expected_ids(decisions: list[Decision]) -> list[str]:
    return [e.id for d in decisions for e in d.events]


def settings(bootstrap: str, group: str) -> SinkSettings:
    return SinkSettings(bootstrap=bootstrap, group=group, batch_size=200, idle_exit=3.0)


def status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def stored_ids(store: EventStore) -> list[str]:
    return [e.event_id for batch in store.read_all() for e in batch]


def test_sink_stores_every_event_once_with_its_input(
    kafka_bootstrap: str, topics: Topics, decisions: list[Decision], tmp_path: Path
) -> None:
    publish(kafka_bootstrap, topics.wallet_events.name, decisions)
    store = open_store(f"sqlite:///{tmp_path / 'events.db'}")
    sink = Sink(settings(kafka_bootstrap, "g1"), topics, store)
    server = sink.metrics.serve(0, sink.health)
    seen: set[tuple[int, int]] = set()

    def probe(progress: SinkProgress) -> None:
        for path in ("/healthz", "/readyz"):
            seen.add((int(progress.records > 0), status(server.port, path)))

    progress = sink.run(probe)
    server.close()
    # Alive throughout; ready once it had its partitions (it had them to read anything).
    assert (1, 200) in seen and (1, 503) not in seen

    ids = stored_ids(store)
    assert sorted(ids) == sorted(expected_ids(decisions))
    assert len(set(ids)) == len(ids)
    assert progress.records == len(decisions)
    assert progress.stored == len(ids) and progress.duplicates == 0
    assert store.verify() == []
    # Each wallet's stream is in the order its decisions were written.
    for wallet_id in store.wallets():
        mine = [e.id for d in decisions if d.wallet_id == wallet_id for e in d.events]
        assert [e.event_id for e in store.read_stream(wallet_id)] == mine
    # The inputs are kept for replay, once each (a duplicate CDR's rejection shares its key).
    inputs = [(i.wallet_id, i.key) for i in store.read_inputs()]
    assert len(inputs) == len(set(inputs))
    assert set(inputs) == {(d.wallet_id, d.input) for d in decisions}
    assert sink.metrics.stored._value.get() == len(ids)
    store.close()


class CrashAfterWrite:
    """A store whose append is durable, after which the process 'dies' before committing."""

    def __init__(self, store: EventStore, crash_on: int) -> None:
        self.store = store
        self.calls = itertools.count(1)
        self.crash_on = crash_on

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    def append(self, events: list[Event], inputs: list[tuple[str, Cdr | Command]]) -> int:
        n = self.store.append(events, inputs)
        if next(self.calls) == self.crash_on:
            raise RuntimeError("crashed between the write and the commit")
        return n


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'events.db'}"
    else:
        with fresh_schema(request.getfixturevalue("postgres_url")) as url:
            yield url


def test_crash_between_write_and_commit_stores_nothing_twice(
    kafka_bootstrap: str, topics: Topics, decisions: list[Decision], store_url: str
) -> None:
    publish(kafka_bootstrap, topics.wallet_events.name, decisions)
    store = open_store(store_url)
    group = f"g-{uuid.uuid4().hex[:6]}"
    crashing = CrashAfterWrite(store, crash_on=3)
    with pytest.raises(RuntimeError, match="crashed"):
        Sink(settings(kafka_bootstrap, group), topics, crashing).run()  # type: ignore[arg-type]
    before = store.position()
    assert before > 0

    progress = Sink(settings(kafka_bootstrap, group), topics, store).run()

    ids = stored_ids(store)
    assert sorted(ids) == sorted(expected_ids(decisions))
    assert progress.duplicates > 0  # the uncommitted batch really came back
    assert progress.stored == len(ids) - before
    assert store.verify() == []
    store.close()


def test_sink_process_killed_and_restarted_stores_each_event_once(
    kafka_bootstrap: str, topics: Topics, decisions: list[Decision], tmp_path: Path
) -> None:
    # Two thirds before the kill, the rest after it: the restarted sink has events of its
    # own to store (and snapshot), however far the first got before the signal landed.
    cut = len(decisions) * 2 // 3
    before_kill, after_kill = decisions[:cut], decisions[cut:]
    publish(kafka_bootstrap, topics.wallet_events.name, before_kill)
    url = f"sqlite:///{tmp_path / 'events.db'}"
    group = f"sink-{uuid.uuid4().hex[:6]}"
    env = {"RATING_TOPICS": topics.source, "KAFKA_BOOTSTRAP": kafka_bootstrap}
    argv = [sys.executable, "-m", "engine.cli", "sink", "--store", url, "--group", group]
    argv += ["--batch-size", "50"]
    first = subprocess.Popen(argv, env={**os.environ, **env}, cwd=REPO)
    store = open_store(url)
    deadline = time.monotonic() + 60
    while store.position() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    killed_at = store.position()
    assert 0 < killed_at <= len(expected_ids(before_kill))
    publish(kafka_bootstrap, topics.wallet_events.name, after_kill)
    assert len(expected_ids(after_kill)) >= 100  # one snapshot round's worth, at least

    done = subprocess.run(
        [*argv, "--idle-exit", "3", "--snapshot-every", "100"],
        env={**os.environ, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "events stored" in done.stdout
    # It took wallet snapshots (in their own process) as it went.
    written = re.search(r"([\d,]+) wallet snapshots written", done.stdout)
    assert written is not None and int(written[1].replace(",", "")) > 0, done.stdout
    assert any(store.latest_snapshot(w) is not None for w in store.wallets())
    ids = stored_ids(store)
    assert sorted(ids) == sorted(expected_ids(decisions))
    assert store.verify() == []
    store.close()


def full_fold(store: EventStore, wallet_id: str) -> tuple[WalletState, datetime | None]:
    events = store.read_stream(wallet_id)
    return fold(initial_state(wallet_id), events), max((e.at for e in events), default=None)


@pytest.mark.parametrize("own_process", [True, False], ids=["own-process", "thread"])
def test_sink_takes_wallet_snapshots_in_the_store_as_it_goes(
    kafka_bootstrap: str,
    topics: Topics,
    decisions: list[Decision],
    store_url: str,
    own_process: bool,
) -> None:
    publish(kafka_bootstrap, topics.wallet_events.name, decisions)
    store = open_store(store_url)
    every = 300
    sink_settings = settings(kafka_bootstrap, f"snap-{uuid.uuid4().hex[:6]}")
    sink_settings.snapshot_every = every
    sink = Sink(sink_settings, topics, store, store_url=store_url if own_process else None)
    progress = sink.run()

    # The events are all there, once each, whatever the snapshots did.
    ids = stored_ids(store)
    assert sorted(ids) == sorted(expected_ids(decisions))
    assert store.verify() == []
    # Rounds were taken (one at least every `every` events while none was under way), and
    # each wallet's state from its latest snapshot and the events after it is the fold of
    # its whole stream.
    assert progress.stored >= every and sink.snapshots.rounds >= 1
    assert sink.snapshots.failures == 0
    snapshotted = 0
    for wallet_id in store.wallets():
        base = store.latest_snapshot(wallet_id)
        snapshotted += base is not None
        state, last_at, after = wallet_state(store, wallet_id)
        assert (state, last_at) == full_fold(store, wallet_id)
        if base is not None:
            assert after == len(
                [e for e in store.read_stream(wallet_id) if e.position > base.position]
            )
    assert snapshotted > 0
    assert sink.snapshots.written >= snapshotted
    assert sink.metrics.snapshots._value.get() == sink.snapshots.written
    store.close()


def test_no_store_snapshots_when_they_are_off(
    kafka_bootstrap: str, topics: Topics, decisions: list[Decision], tmp_path: Path
) -> None:
    publish(kafka_bootstrap, topics.wallet_events.name, decisions)
    store = open_store(f"sqlite:///{tmp_path / 'events.db'}")
    sink_settings = settings(kafka_bootstrap, "no-snapshots")
    sink_settings.snapshot_every = 0
    sink = Sink(sink_settings, topics, store)
    sink.run()
    assert sorted(stored_ids(store)) == sorted(expected_ids(decisions))
    assert all(store.latest_snapshot(w) is None for w in store.wallets())
    assert sink.snapshots.rounds == 0 and sink.snapshots.written == 0
    store.close()


class SnapshotsFail:
    """A store that appends, and refuses every snapshot."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    def put_snapshots(self, snapshots: object) -> int:
        raise RuntimeError("the snapshot table is away")


def test_a_failed_snapshot_round_is_counted_and_loses_no_event(
    kafka_bootstrap: str, topics: Topics, decisions: list[Decision], tmp_path: Path
) -> None:
    publish(kafka_bootstrap, topics.wallet_events.name, decisions)
    store = open_store(f"sqlite:///{tmp_path / 'events.db'}")
    sink_settings = settings(kafka_bootstrap, "failing-snapshots")
    sink_settings.snapshot_every = 300
    sink = Sink(sink_settings, topics, SnapshotsFail(store))  # type: ignore[arg-type]
    progress = sink.run()
    ids = stored_ids(store)
    assert sorted(ids) == sorted(expected_ids(decisions))
    assert progress.stored == len(ids) and progress.duplicates == 0
    assert store.verify() == []
    assert sink.snapshots.failures >= 1 and sink.snapshots.written == 0
    assert sink.metrics.snapshot_failures._value.get() == sink.snapshots.failures
    assert all(store.latest_snapshot(w) is None for w in store.wallets())
    store.close()
