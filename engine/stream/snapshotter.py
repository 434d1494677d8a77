"""When a wallet partition's snapshot is written, and where it goes.

A snapshot (snapshots.py) is written by the partition's owner in the partition's
transaction (fencing.py), at most every ``snapshot_every`` seconds and only when something
was decided since the last one. It is the records of the wallets that changed since the
partition's previous snapshot, then the partition's manifest. A partition recovered from a
verified, whole snapshot goes on in its epoch (only the wallets changed since are written,
and of them only the id chunks that changed since the snapshot read);
otherwise its first snapshot starts a new epoch and writes every wallet. They all go to
the partition of ``wallet.snapshots`` with the wallet partition's own number
(`placement`): recovery reads them there, so the writer and the reader place them the same
way, through this one function, whatever the partitioner.
"""

from __future__ import annotations

import logging
import time

from ..domain import WalletState
from .chunks import Layout
from .fencing import PartitionWriter
from .metrics import Metrics
from .processor import PartitionState, RatingProcessor, Written
from .settings import WorkerSettings
from .snapshots import manifest_key, manifest_record, new_epoch, wallet_records

log = logging.getLogger("rating-engine")


def placement(partition: int) -> tuple[bytes, int]:
    """The manifest key and the ``wallet.snapshots`` partition of wallet partition
    ``partition``'s snapshots. The partition is given explicitly, never hashed from a key;
    each record's key names what it holds (the partition, a wallet, a chunk of its ids), so
    compaction keeps the latest of each."""
    return manifest_key(partition), partition


class _Epoch:
    """What the snapshots of one partition's epoch have written so far."""

    __slots__ = ("id", "layouts", "part", "written")

    def __init__(self, part: PartitionState, carried: Written | None = None) -> None:
        self.id = carried.epoch if carried is not None else new_epoch()
        self.part = part
        """The partition state the epoch is of (a recovery installs a new one)."""
        self.written: dict[str, WalletState] = dict(carried.wallets) if carried else {}
        """Each wallet's state as its latest record of the epoch holds it (states are
        immutable: a wallet whose state is another object changed since)."""
        self.layouts: dict[str, Layout] = dict(carried.layouts) if carried else {}
        """Each wallet's chunks as its latest record of the epoch names them: those this
        process wrote, and those read at recovery that are its state's spans (a carried
        wallet without one has every chunk written again when it changes)."""


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
        self.epochs: dict[int, _Epoch] = {}

    def recovered(self, partition: int, events_offset: int, written: Written | None = None) -> None:
        """A partition rebuilt up to ``events_offset``: a snapshot of that is not news.

        Rebuilt from a verified, whole snapshot (``written``: its epoch and the wallets as
        its records hold them), its snapshots go on in that epoch: the wallets whose state
        is still the one read are not written again. Otherwise its next snapshot starts a
        new epoch (writes every wallet)."""
        self.snapshotted[partition] = events_offset
        part = self.processor.partitions.get(partition)
        if written is None or part is None:
            self.epochs.pop(partition, None)
        else:
            self.epochs[partition] = _Epoch(part, written)

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
        epoch = self.epochs.get(partition)
        if epoch is None or epoch.part is not part:
            epoch = self.epochs[partition] = _Epoch(part)
        changed = [s for w, s in part.wallets.items() if epoch.written.get(w) is not s]
        records = []
        layouts: dict[str, Layout] = {}
        for s in changed:
            before = epoch.layouts.get(s.wallet_id, ())
            made, layouts[s.wallet_id] = wallet_records(
                partition, epoch.id, part.events_offset, s, before
            )
            records += made
        records.append(manifest_record(partition, epoch.id, part))
        self.snapshot_at[partition] = time.monotonic()
        largest = max(len(value) for _, value in records)
        if largest > self.settings.snapshot_max_bytes:
            # A record this large would be refused by the broker and stop the worker; without
            # a fresh snapshot, recovery replays more of wallet.events, which is only slower.
            self.metrics.snapshots_skipped.inc()
            log.warning(
                "partition %d snapshot skipped: a record of %d bytes > %d (recovery will "
                "replay from the previous snapshot)",
                partition,
                largest,
                self.settings.snapshot_max_bytes,
            )
            return
        for key, value in records:
            writer.produce(self.topic, key, value, partition)
        for s in changed:
            epoch.written[s.wallet_id] = s
        epoch.layouts.update(layouts)
        self.snapshotted[partition] = part.events_offset
        self.metrics.snapshots.inc()
        log.info(
            "partition %d snapshot at offset %d (%d of %d wallets written, %d chunks)",
            partition,
            part.events_offset,
            len(changed),
            len(part.wallets),
            len(records) - len(changed) - 1,
        )
