"""Partition ownership, without a broker: one recovery per partition, nothing kept of a
partition revoked or fenced meanwhile, a fenced partition held off, and only the
partitions still owned committed."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from engine.catalog import load_catalog
from engine.stream import ownership
from engine.stream.fencing import Fenced
from engine.stream.ownership import FENCE_HOLD, Ownership
from engine.stream.processor import PartitionState, RatingProcessor, Recovered
from engine.stream.settings import WorkerSettings
from engine.stream.snapshotter import Snapshotter
from engine.stream.topics import REPO_TOPICS, load_topics
from engine.stream.vitals import Vitals

from .harness import CATALOG


class Writer:
    """A partition's producer that commits, or fails as told."""

    def __init__(self, offset: int = 0, fails: Exception | None = None) -> None:
        self.closed = False
        self.began = 0
        self.offset = offset
        self.fails = fails
        self.offsets: dict[tuple[str, int], int] = {}
        self.last_decision = ""

    def begin(self) -> None:
        self.began += 1

    def produce(self, *record: Any) -> None:
        pass

    def commit(self) -> None:
        if self.fails is not None:
            raise self.fails

    def close(self) -> None:
        self.closed = True


class Loads:
    """Stands in for `load_partition`: a fresh writer and an empty state per call, once
    ``gate`` (if any) is open."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.writers: list[Writer] = []
        self.gate = gate

    def __call__(self, settings: Any, topics: Any, partition: int, *_: Any) -> Any:
        if self.gate is not None:
            self.gate.wait(10)
        self.writers.append(Writer())
        return self.writers[-1], Recovered(PartitionState(events_offset=5), 2, "snapshot")


@pytest.fixture
def owner(tmp_path: Path) -> Ownership:
    topics = load_topics(REPO_TOPICS, environ={})
    settings = WorkerSettings(catalog=CATALOG, data_dir=tmp_path, session_timeout=10.0)
    processor = RatingProcessor(load_catalog(CATALOG))
    consumer = SimpleNamespace(assignment=set)
    app = SimpleNamespace(consumer=consumer, rebalancing=False, in_recovery=False)
    vitals = Vitals(app, processor, list)
    snapshots = Snapshotter(settings, topics.wallet_snapshots.name, processor, vitals.metrics)
    return Ownership(app, settings, topics, processor, vitals, snapshots)


def _run(scenario: Callable[[], Any]) -> None:
    asyncio.run(scenario())


def _tps(owner: Ownership, partition: int) -> list[tuple[str, int]]:
    names = owner.names
    topics = [names.cdr_raw.name, names.cdr_by_wallet.name, names.wallet_commands.name]
    return [(topic, partition) for topic in topics]


def test_a_partition_is_recovered_once_and_installed(
    owner: Ownership, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads = Loads()
    monkeypatch.setattr(ownership, "load_partition", loads)

    async def scenario() -> None:
        first, again = owner.recovery(1), owner.recovery(1)
        assert first is again
        await first

    _run(scenario)
    assert len(loads.writers) == 1
    assert owner.processor.recovered(1) and not owner.needs_recovery(1)
    assert owner.writers[1] is loads.writers[0]
    assert owner.snapshots.snapshotted[1] == 5
    assert owner.metrics.registry.get_sample_value("rating_recovery_decisions_total") == 2
    assert owner.metrics.registry.get_sample_value("rating_partitions_owned") == 1


def test_a_partition_revoked_during_its_recovery_is_dropped(
    owner: Ownership, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    loads = Loads(gate)
    monkeypatch.setattr(ownership, "load_partition", loads)

    async def scenario() -> None:
        recovery = owner.recovery(1)
        await asyncio.sleep(0.05)
        await owner.on_revoked(None, {TP(owner.names.cdr_by_wallet.name, 1)})
        gate.set()
        await recovery

    _run(scenario)
    assert not owner.processor.recovered(1)
    assert 1 not in owner.writers and loads.writers[0].closed


def test_a_revoked_partition_is_forgotten(
    owner: Ownership, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ownership, "load_partition", Loads())

    async def scenario() -> None:
        await owner.recover(1)
        writer = owner.writers[1]
        for tp in _tps(owner, 1):
            owner.positions.next[tp] = 7
        revoked = {TP(topic, partition) for topic, partition in _tps(owner, 1)}
        await owner.on_revoked(None, revoked)
        assert writer.closed

    _run(scenario)
    assert not owner.processor.recovered(1) and owner.needs_recovery(1)
    assert not owner.writers and not owner.recovering and not owner.positions.next


def test_a_fenced_partition_is_dropped_held_off_then_recovered_again(
    owner: Ownership, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads = Loads()
    monkeypatch.setattr(ownership, "load_partition", loads)

    async def scenario() -> None:
        await owner.recover(1)
        for tp in _tps(owner, 1):
            owner.positions.next[tp] = 7
        owner.fenced_out(1, owner.writers[1], Fenced("taken over"))
        assert loads.writers[0].closed and not owner.processor.recovered(1)
        # Its wallet inputs start again from the group's commit; cdr.raw is not its.
        assert list(owner.positions.next) == [(owner.names.cdr_raw.name, 1)]
        assert not owner.needs_recovery(1)  # held off: no recovery at its next batch
        assert await owner.writer(1) is None
        owner.fenced[1] = time.monotonic() - FENCE_HOLD * owner.settings.session_timeout
        writer = await owner.writer(1)  # the hold is over: recovered like a new owner
        assert writer is loads.writers[1] and writer.began == 1

    _run(scenario)
    assert owner.metrics.registry.get_sample_value("rating_partitions_fenced_total") == 1


def test_only_the_partitions_still_owned_are_committed(
    owner: Ownership, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ownership, "load_partition", Loads())
    events = owner.names.wallet_events.name

    async def scenario() -> set[int]:
        for partition in (1, 2):
            await owner.recover(partition)
        kept, fenced = owner.writers[1], owner.writers[2]
        kept.offsets[(events, 1)] = 9
        kept.last_decision = "d-9"
        fenced.fails = Fenced("taken over")
        return await owner.commit({1: kept, 2: fenced})

    assert asyncio.run(scenario()) == {1}
    part = owner.processor.partitions[1]
    assert (part.events_offset, part.last_decision) == (9, "d-9")
    assert not owner.processor.recovered(2) and 2 in owner.fenced


def test_a_completed_rebalance_recovers_and_looks_up_the_whole_assignment(
    owner: Ownership, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ownership, "load_partition", Loads())
    asked: list[list[tuple[str, int]]] = []

    def committed_offsets(bootstrap: str, group: str, tps: list[tuple[str, int]]) -> Any:
        asked.append(sorted(tps))
        return dict.fromkeys(tps, 3)

    monkeypatch.setattr(ownership, "committed_offsets", committed_offsets)
    assigned = {TP(topic, partition) for topic, partition in _tps(owner, 0)}
    owner.app.consumer.assignment = lambda: assigned

    async def scenario() -> None:
        await owner.on_rebalanced(None)
        await owner.recovering[0]
        assert await owner.committed(owner.names.wallet_commands.name, 0) == 3

    _run(scenario)
    assert asked == [sorted(_tps(owner, 0))]  # one lookup for the whole assignment
    assert owner.processor.recovered(0)
