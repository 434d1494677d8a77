"""Snapshot scheduling and placement: due at most every ``snapshot_every`` seconds, only when
something was decided since, no record larger than the limit, always on the snapshot
partition numbered like its wallet partition; one record per wallet, and after the first
only the wallets that changed."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from engine.catalog import load_catalog
from engine.domain import initial_state
from engine.stream.metrics import Metrics
from engine.stream.processor import PartitionState, RatingProcessor, Written
from engine.stream.settings import WorkerSettings
from engine.stream.snapshots import restore
from engine.stream.snapshotter import Snapshotter, placement

from .harness import CATALOG

TOPIC = "wallet.snapshots"


class Writer:
    """A partition writer that keeps what it is given."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None, bytes, int | None]] = []

    def produce(
        self, topic: str, key: bytes | None, value: bytes, partition: int | None = None
    ) -> None:
        self.records.append((topic, key, value, partition))


def _snapshotter(every: float = 30.0, max_bytes: int = 900_000) -> Snapshotter:
    settings = WorkerSettings(
        catalog=CATALOG, snapshot_every=every, snapshot_max_bytes=max_bytes, data_dir=Path()
    )
    processor = RatingProcessor(load_catalog(CATALOG))
    processor.install(3, PartitionState(events_offset=41, last_decision="d-41"))
    return Snapshotter(settings, TOPIC, processor, Metrics())


def _count(snapshots: Snapshotter, name: str) -> float | None:
    return snapshots.metrics.registry.get_sample_value(name)


@pytest.mark.parametrize("partition", [0, 3, 11])
def test_a_snapshot_goes_to_the_partition_numbered_like_its_wallet_partition(
    partition: int,
) -> None:
    assert placement(partition) == (f"partition-{partition}".encode(), partition)


def test_a_snapshot_written_names_its_partition_and_offset() -> None:
    snapshots, writer = _snapshotter(), Writer()
    snapshots.write(3, writer)
    [(topic, key, value, partition)] = writer.records
    assert (topic, key, partition) == (TOPIC, b"partition-3", 3)
    state, _ = restore([(key, value)], 3)
    assert state is not None
    assert (state.events_offset, state.last_decision) == (41, "d-41")
    assert _count(snapshots, "rating_snapshots_total") == 1


def test_a_snapshot_is_due_only_after_the_interval_and_new_decisions() -> None:
    snapshots, writer = _snapshotter(), Writer()
    snapshots.write_if_due(3, writer)
    assert not writer.records  # the interval starts with the partition's first batch
    snapshots.snapshot_at[3] -= 31
    snapshots.write_if_due(3, writer)
    assert len(writer.records) == 1
    snapshots.snapshot_at[3] -= 31
    snapshots.write_if_due(3, writer)
    assert len(writer.records) == 1  # nothing decided since the last one
    snapshots.processor.partitions[3].events_offset = 42
    snapshots.write_if_due(3, writer)
    assert len(writer.records) == 2


def test_a_recovered_partition_needs_no_snapshot_of_what_it_read() -> None:
    snapshots, writer = _snapshotter(), Writer()
    snapshots.recovered(3, 41)
    snapshots.snapshot_at[3] = 0.0
    snapshots.write_if_due(3, writer)
    assert not writer.records


def test_no_snapshots_when_the_interval_is_zero() -> None:
    snapshots, writer = _snapshotter(every=0), Writer()
    snapshots.snapshot_at[3] = 0.0
    snapshots.write_if_due(3, writer)
    assert not writer.records


def test_a_snapshot_over_the_limit_is_skipped_and_counted() -> None:
    snapshots, writer = _snapshotter(max_bytes=1), Writer()
    snapshots.write(3, writer)
    assert not writer.records
    assert _count(snapshots, "rating_snapshots_skipped_total") == 1
    assert 3 not in snapshots.snapshotted


def _keys(writer: Writer) -> list[bytes]:
    """The wallet records and manifests written, in order (each wallet record comes after
    its id chunks, which test_snapshot_chunks.py follows)."""
    return [key for _, key, _, _ in writer.records if key is not None and key[:4] != b"ids/"]


def test_a_snapshot_is_a_record_per_wallet_then_the_manifest_and_later_only_changes() -> None:
    snapshots, writer = _snapshotter(), Writer()
    part = snapshots.processor.partitions[3]
    part.wallets = {w: initial_state(w) for w in ("a", "b", "c")}
    snapshots.write(3, writer)
    assert _keys(writer) == [b"wallet/a", b"wallet/b", b"wallet/c", b"partition-3"]
    assert {p for _, _, _, p in writer.records} == {3}
    part.wallets["b"] = msgspec.structs.replace(part.wallets["b"], credit=5)
    part.events_offset, part.last_decision = 42, "d-42"
    snapshots.write(3, writer)
    assert _keys(writer)[4:] == [b"wallet/b", b"partition-3"]
    # Read back as compaction leaves it (the latest of each key), it is the state now.
    state, torn = restore([(k, v) for _, k, v, _ in writer.records], 3)
    assert state is not None and not torn
    assert state.wallets == part.wallets and state.events_offset == 42


def test_a_recovered_partition_starts_a_new_epoch_that_writes_every_wallet() -> None:
    snapshots, writer = _snapshotter(), Writer()
    part = snapshots.processor.partitions[3]
    part.wallets = {w: initial_state(w) for w in ("a", "b")}
    snapshots.write(3, writer)
    snapshots.recovered(3, 41)
    snapshots.write(3, writer)
    assert _keys(writer)[3:] == [b"wallet/a", b"wallet/b", b"partition-3"]


def test_a_partition_recovered_from_a_verified_snapshot_goes_on_in_its_epoch() -> None:
    snapshots, writer = _snapshotter(), Writer()
    part = snapshots.processor.partitions[3]
    part.wallets = {w: initial_state(w) for w in ("a", "b", "c")}
    snapshots.write(3, writer)
    first = snapshots.epochs[3].id
    # A new owner read that snapshot back (the log confirmed it), then folded a decision
    # for "b" and one for a new wallet "d" from the log after it.
    read, _ = restore([(k, v) for _, k, v, _ in writer.records], 3)
    assert read is not None
    as_read = dict(read.wallets)
    read.wallets["b"] = msgspec.structs.replace(read.wallets["b"], credit=7)
    read.wallets["d"] = initial_state("d")
    read.events_offset, read.last_decision = 45, "d-45"
    snapshots.processor.install(3, read)
    snapshots.recovered(3, 45, Written(first, as_read, {}))
    snapshots.write(3, writer)
    assert snapshots.epochs[3].id == first
    assert _keys(writer)[4:] == [b"wallet/b", b"wallet/d", b"partition-3"]
    state, torn = restore([(k, v) for _, k, v, _ in writer.records], 3)
    assert state is not None and not torn
    assert state.wallets == read.wallets and state.events_offset == 45
