"""Which wallet partitions this worker owns, and taking them on and giving them up.

A wallet partition is this worker's from when Kafka assigns it until it is revoked, but the
worker decides on it only once it has *recovered* it: its transactional producer fences the
previous owner first (fencing.py), then the partition's latest snapshot (verified against
the log) and the ``wallet.events`` decisions after it are read back (recovery.py,
processor.recover). A partition whose producer is fenced while this worker still thinks it
owns it (paused past its session) is dropped at once and held off for a while
(`FENCE_HOLD`); a revoked one is forgotten, and recovered afresh if it comes back.

Input partitions start where the group's committed offset says (looked up for the whole
assignment when a rebalance completes); those whose batch this worker could not commit
start again from there (`Ownership.restart`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..domain.decision import Decision
from .exits import stop_before_commit
from .fencing import Fenced, PartitionWriter
from .positions import Positions, TopicPartition
from .processor import RatingProcessor, Recovered, Written, recover
from .recovery import (
    InputReader,
    committed_offsets,
    read_decision_at,
    read_decisions,
    read_records,
)
from .settings import WorkerSettings
from .snapshots import read_snapshot
from .snapshotter import Snapshotter, placement
from .topics import Topics
from .vitals import Vitals

log = logging.getLogger("rating-engine")

FENCE_HOLD = 2.0
"""A fenced partition stays dropped for this many session timeouts. A worker fenced because
it lost the partition is out of the group by then (its next heartbeat after a pause fails
at once, and the rebalance revokes the partition); if it still holds the partition after
that, it is the owner again (its own transaction outlived the broker's timeout, say), and
recovers the partition like a new owner: fencing first, then reading the log, which is
exact whoever wins."""


def load_partition(
    settings: WorkerSettings,
    topics: Topics,
    partition: int,
    max_message_bytes: int | None,
    on_error: Any,
) -> tuple[PartitionWriter, Recovered]:
    """Blocking: take the partition's producer (fencing every earlier one), then rebuild its
    state from its snapshot and the ``wallet.events`` decisions after it."""
    bootstrap, topic = settings.bootstrap, topics.wallet_events.name
    writer = PartitionWriter(
        bootstrap, settings.app_id, partition, max_message_bytes, on_error=on_error
    )
    # First fence, then read: what the previous owner may still send is aborted,
    # so the log read next is all that will ever be committed before us.
    writer.init()
    recovered = recovered_from(
        read_records(bootstrap, topics.wallet_snapshots.name, placement(partition)[1]),
        partition,
        lambda offset: read_decision_at(bootstrap, topic, partition, offset),
        lambda after: read_decisions(bootstrap, topic, partition, after),
    )
    return writer, recovered


def recovered_from(
    records: Iterable[tuple[bytes | None, bytes | None]],
    partition: int,
    decision_at: Callable[[int], Decision | None],
    decisions_after: Callable[[int], Iterable[tuple[int, Decision]]],
) -> Recovered:
    """The partition recovered from its snapshot records and its log. A snapshot that is
    there but unusable (torn, unreadable, another partition's) is reported as a mismatch,
    like one that does not match the log: either way the log was replayed whole.

    A verified snapshot's epoch goes on (`Recovered.written`): its records are each
    wallet's state as of its manifest, which the log confirmed, so the new owner's next
    snapshot writes only the wallets that changed since, not every wallet again, and of
    those only the id chunks that changed since (`Written.layouts`)."""
    snapshot, unreadable, epoch, layouts = read_snapshot(records, partition)
    as_read = dict(snapshot.wallets) if snapshot is not None else {}
    recovered = recover(snapshot, decision_at, decisions_after)  # folds into `snapshot`
    if unreadable:
        return recovered._replace(source="mismatch")
    if recovered.source == "snapshot" and epoch is not None:
        return recovered._replace(written=Written(epoch, as_read, layouts))
    return recovered


class Ownership:
    """The wallet partitions of one worker: their producers, recoveries and fences, and
    where each input partition starts."""

    def __init__(
        self,
        app: Any,
        settings: WorkerSettings,
        topics: Topics,
        processor: RatingProcessor,
        vitals: Vitals,
        snapshots: Snapshotter,
    ) -> None:
        self.app = app
        self.settings = settings
        self.names = topics
        self.processor = processor
        self.vitals = vitals
        self.metrics = vitals.metrics
        self.snapshots = snapshots
        self.wallet_inputs = frozenset({topics.cdr_by_wallet.name, topics.wallet_commands.name})
        self.max_message_bytes = max(t.max_message_bytes or 0 for t in topics.all) or None
        self.recovering: dict[int, asyncio.Future[None]] = {}
        self.writers: dict[int, PartitionWriter] = {}
        """The producer of each wallet partition this worker owns and has recovered."""
        self.fenced: dict[int, float] = {}
        """Partitions whose producer was fenced, with when: not this worker's for a while
        (`FENCE_HOLD`), or until assigned again."""
        self.starts: dict[TopicPartition, asyncio.Future[dict[TopicPartition, int]]] = {}
        self.input_reader = InputReader(settings.bootstrap)
        """Reads back the gaps in an input partition's offsets (positions.py)."""
        self.positions = Positions(self.committed, self.read_back)
        self.commits = ThreadPoolExecutor(
            topics.wallet_events.partitions, thread_name_prefix="commit"
        )
        self.recoveries = ThreadPoolExecutor(
            topics.wallet_events.partitions, thread_name_prefix="recovery"
        )
        """One thread per wallet partition: every assigned partition recovers at once (a
        recovery mostly waits on Kafka), not a few at a time on the loop's default pool."""

    def wallet_partitions(self, tps: set[Any]) -> set[int]:
        return {tp.partition for tp in tps if tp.topic in self.wallet_inputs}

    # -- where input partitions start ------------------------------------------------------

    async def committed(self, topic: str, partition: int) -> int:
        """Where the group goes on in a partition (looked up for the whole assignment at
        once when the rebalance completes, so the first batch does not wait for each)."""
        starts = self.starts.get((topic, partition))
        if starts is None:
            starts = self.look_up_starts([(topic, partition)])
        return (await starts)[(topic, partition)]

    def look_up_starts(
        self, tps: list[tuple[str, int]]
    ) -> asyncio.Future[dict[TopicPartition, int]]:
        loop = asyncio.get_running_loop()
        group, bootstrap = self.settings.app_id, self.settings.bootstrap
        future = loop.run_in_executor(None, committed_offsets, bootstrap, group, tps)
        for tp in tps:
            self.starts[tp] = future
        return future

    async def read_back(self, topic: str, partition: int, start: int, end: int) -> list[Any]:
        loop = asyncio.get_running_loop()
        read = self.input_reader.read
        return await loop.run_in_executor(None, read, topic, partition, start, end)

    def restart(self, tps: list[TopicPartition]) -> None:
        """Input partitions whose inputs were not decided here: if they come back, they start
        again from the group's committed offset, looked up afresh."""
        self.positions.forget(tps)
        for tp in tps:
            self.starts.pop(tp, None)

    # -- recovery --------------------------------------------------------------------------

    async def recover(self, partition: int) -> None:
        """Rebuild a wallet partition before deciding anything on it."""
        await self.recovery(partition)

    def recovery(self, partition: int) -> asyncio.Future[None]:
        """The (one) recovery of a partition: fence its previous owner, then its snapshot
        (verified against the log) and ``wallet.events`` after it."""
        future = self.recovering.get(partition)
        if future is None:
            future = self.recovering[partition] = asyncio.ensure_future(self._run(partition))
        return future

    async def _run(self, partition: int) -> None:
        loop = asyncio.get_running_loop()
        args = (self.settings, self.names, partition, self.max_message_bytes)
        self.metrics.recovering.inc()
        try:
            writer, recovered = await loop.run_in_executor(
                self.recoveries, load_partition, *args, self.vitals.kafka.on_error
            )
        finally:
            self.metrics.recovering.dec()
        if self.recovering.get(partition) is not asyncio.current_task():
            # Revoked while it ran: another worker may have decided more since, so
            # this state must not come back if the partition returns here.
            log.info("partition %d revoked during its recovery; dropped", partition)
            writer.close()
            return
        self._install(partition, writer, recovered)

    def _install(self, partition: int, writer: PartitionWriter, recovered: Recovered) -> None:
        state, count, source, written = recovered
        self.writers[partition] = writer
        self.processor.install(partition, state)
        self.snapshots.recovered(partition, state.events_offset, written)
        self.metrics.recovered_decisions.inc(count)
        self.metrics.partitions.set(len(self.processor.partitions))
        if source == "mismatch":
            self.metrics.snapshot_mismatch.inc()
            log.warning(
                "partition %d: its snapshot does not match wallet.events (the "
                "decision it names is not at its offset); replayed the whole partition",
                partition,
            )
        log.info(
            "partition %d recovered from %s and %d decisions",
            partition,
            "a snapshot" if source == "snapshot" else "no snapshot",
            count,
        )

    # -- a batch's transactions ------------------------------------------------------------

    def needs_recovery(self, partition: int) -> bool:
        """Whether ``partition`` is to be recovered before a batch decides on it."""
        return partition not in self.fenced and not self.processor.recovered(partition)

    async def writer(self, partition: int) -> PartitionWriter | None:
        """The partition's producer with a transaction open for this batch (and the
        partition's snapshot in it when one is due), or ``None`` when the partition is not
        this worker's (fenced, or revoked while it recovered)."""
        fenced_at = self.fenced.get(partition)
        if fenced_at is not None:
            if time.monotonic() - fenced_at < FENCE_HOLD * self.settings.session_timeout:
                return None
            del self.fenced[partition]
        if not self.processor.recovered(partition):
            await self.recover(partition)
        writer = self.writers.get(partition)
        if writer is None or not self.processor.recovered(partition):
            return None
        try:
            writer.begin()
            self.snapshots.write_if_due(partition, writer)
        except Fenced as exc:
            self.fenced_out(partition, writer, exc)
            return None
        return writer

    async def commit(self, writers: dict[int, PartitionWriter]) -> set[int]:
        """Commit each partition's transaction (concurrently, off the event loop); the
        partitions committed by the producer that still owns them.

        A fenced partition is dropped (`fenced_out`). Any other failure stops the process
        before the batch's input offsets are committed, as a refused delivery does. A worker
        told to stop while it waits lets the commits finish first.
        """
        if not writers:
            return set()
        loop = asyncio.get_running_loop()
        futures = [loop.run_in_executor(self.commits, w.commit) for w in writers.values()]
        everything = asyncio.gather(*futures, return_exceptions=True)
        try:
            results = await asyncio.shield(everything)
        except asyncio.CancelledError:
            await everything
            raise
        committed = set()
        events_topic = self.names.wallet_events.name
        for (partition, writer), result in zip(writers.items(), results, strict=True):
            if isinstance(result, Fenced):
                self.fenced_out(partition, writer, result)
                continue
            if isinstance(result, BaseException):
                stop_before_commit(result, trace=True)
            part = self.processor.partitions.get(partition)
            if part is None or self.writers.get(partition) is not writer:
                continue  # revoked meanwhile: the next owner reads what was committed
            offset = writer.offsets.get((events_topic, partition))
            if offset is not None and offset > part.events_offset:
                part.events_offset = offset
                part.last_decision = writer.last_decision
            committed.add(partition)
        return committed

    def fenced_out(self, partition: int, writer: PartitionWriter, why: Exception) -> None:
        """Another worker took ``partition`` over (its producer fenced ours): nothing of the
        open transaction is visible; forget the partition until it is assigned here again."""
        if self.writers.get(partition) is not writer:
            return  # an older producer of a partition recovered again since
        del self.writers[partition]
        writer.close()
        self.fenced[partition] = time.monotonic()
        self.processor.forget([partition])
        self.recovering.pop(partition, None)
        # Its inputs start again from the group's commit if the partition comes back.
        mine = [tp for tp in self.positions.next if tp[1] == partition]
        self.restart([tp for tp in mine if tp[0] in self.wallet_inputs])
        self.metrics.fenced.inc()
        self.metrics.partitions.set(len(self.processor.partitions))
        log.warning(
            "partition %d fenced: another worker owns it now; its state is dropped and "
            "nothing of this batch for it was written (%s)",
            partition,
            why,
        )

    # -- rebalances ------------------------------------------------------------------------

    async def on_rebalanced(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        """Start rebuilding every assigned wallet partition now (tables are restored by
        then), not at its first input, so the worker is ready before traffic arrives."""
        assigned: set[Any] = set(self.app.consumer.assignment())
        inputs = {self.names.cdr_raw.name, *self.wallet_inputs}
        fresh = [(tp.topic, tp.partition) for tp in assigned if tp.topic in inputs]
        fresh = [tp for tp in fresh if tp not in self.starts]
        if fresh:
            self.look_up_starts(fresh)
        for partition in self.wallet_partitions(assigned):
            if not self.processor.recovered(partition):
                self.recovery(partition)

    async def on_revoked(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        """Forget partitions another worker may now change; recover them if they return."""
        revoked: set[Any] = args[0] if args else kwargs.get("revoked", set())
        partitions = self.wallet_partitions(revoked)
        self.processor.forget(partitions)
        for p in partitions:
            # An open transaction of an in-flight batch commits, or is fenced by the next
            # owner; either way this worker writes nothing more for the partition.
            writer = self.writers.pop(p, None)
            if writer is not None:
                writer.close()
            self.fenced.pop(p, None)
        self.positions.forget((tp.topic, tp.partition) for tp in revoked)
        for tp in revoked:
            self.starts.pop((tp.topic, tp.partition), None)
        for p in partitions:
            self.recovering.pop(p, None)
        self.metrics.partitions.set(len(self.processor.partitions))
        self.vitals.forget_lag(revoked)
