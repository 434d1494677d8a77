"""When a wallet partition's snapshot is written, and where it goes.

A snapshot (snapshots.py) is written by the partition's owner in the partition's
transaction (fencing.py), at most every ``snapshot_every`` seconds and only when something
was decided since the last one. It goes to the partition of ``wallet.snapshots`` with the
wallet partition's own number (`placement`): recovery reads the latest one there, so the
writer and the reader place it the same way, through this one function, whatever the
partitioner.
"""

from __future__ import annotations

import logging
import time

from .fencing import PartitionWriter
from .metrics import Metrics
from .processor import RatingProcessor
from .settings import WorkerSettings
from .snapshots import encode_partition

log = logging.getLogger("rating-engine")


def placement(partition: int) -> tuple[bytes, int]:
    """The key and the ``wallet.snapshots`` partition of wallet partition ``partition``'s
    snapshots. The partition is given explicitly, never hashed from the key; the key names
    the wallet partition, so compaction keeps its latest snapshot."""
    return f"partition-{partition}".encode(), partition


class Snapshotter:
    """Per wallet partition: when its last snapshot was written, and at which offset."""

    def __init__(
        self, settings: WorkerSettings, topic: str, processor: RatingProcessor, metrics: Metrics
    ) -> None:
        self.settings = settings
        self.topic = topic
        self.processor = processor
        self.metrics = metrics
        self.snapshot_at: dict[int, float] = {}
        self.snapshotted: dict[int, int] = {}
        """The ``wallet.events`` offset of each partition's last snapshot."""

    def recovered(self, partition: int, events_offset: int) -> None:
        """A partition rebuilt up to ``events_offset``: a snapshot of that is not news."""
        self.snapshotted[partition] = events_offset

    def write_if_due(self, partition: int, writer: PartitionWriter) -> None:
        """Write the partition's snapshot in the transaction just opened when one is due:
        the state as of the last committed transaction, which names its last decision."""
        every = self.settings.snapshot_every
        part = self.processor.partitions[partition]
        now = time.monotonic()
        last = self.snapshot_at.setdefault(partition, now)
        if every <= 0 or now - last < every or part.events_offset < 0:
            return
        if self.snapshotted.get(partition) == part.events_offset:
            return  # nothing decided since the last one
        self.write(partition, writer)

    def write(self, partition: int, writer: PartitionWriter) -> None:
        part = self.processor.partitions[partition]
        raw = encode_partition(partition, part)
        self.snapshot_at[partition] = time.monotonic()
        if len(raw) > self.settings.snapshot_max_bytes:
            # A record this large would be refused by the broker and stop the worker; without
            # a fresh snapshot, recovery replays more of wallet.events, which is only slower.
            self.metrics.snapshots_skipped.inc()
            log.warning(
                "partition %d snapshot skipped: %d bytes > %d (recovery will replay from the "
                "previous snapshot)",
                partition,
                len(raw),
                self.settings.snapshot_max_bytes,
            )
            return
        key, on = placement(partition)
        writer.produce(self.topic, key, raw, on)
        self.snapshotted[partition] = part.events_offset
        self.metrics.snapshots.inc()
        log.info("partition %d snapshot at offset %d", partition, part.events_offset)
