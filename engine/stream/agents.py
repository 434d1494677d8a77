"""The streaming topology, read top to bottom: topics → enrich → rate (+ the clock).

- ``enrich``: ``cdr.raw`` → decode and validate → ICCID to wallet → ``cdr.by-wallet``, keyed
  by wallet: one record per wallet and ``cdr.raw`` partition of a batch (routed.py), each
  CDR with its origin (raw partition and offset); anything that fails goes to
  ``cdr.rejected`` with its bytes, the reason and the origin.
- ``rate``: ``cdr.by-wallet`` + ``wallet.commands`` (co-partitioned by wallet) → the pure
  decider → one ``Decision`` record per input on ``wallet.events``, same partition; with it,
  the decision's follow-ups: bar / unbar actions on ``network.actions`` and the routed
  charges of split billing on ``wallet.commands`` of the paying wallet. All a batch writes
  for a wallet partition (and the partition's snapshot) is one Kafka transaction of that
  partition's own producer, so a worker that lost the partition is fenced (fencing.py).
- ``clock``: a timer sending ``Tick`` commands, so MRCs and expiries happen without traffic.

Faust consumes (``take_events`` batches, ``read_committed``; the offsets it commits are the
engine's, see positions.py); the agents produce through confluent-kafka
(publisher.BatchProducer, fencing.PartitionWriter) and wait until what a batch produced is
acknowledged (committed) by Kafka before the batch's input offsets may be committed, so a
crash can only
make Kafka deliver inputs again, never lose them; the rating processor recognises inputs it
already decided (see processor.py), so redelivery charges nothing twice.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import faust
import msgspec
from aiokafka.partitioner import murmur2
from faust.types import TP

from ..codec import (
    REJECTION_MAX_BYTES,
    Rejected,
    decode_cdr,
    encode,
    fit,
    internal_error,
    raw_fields,
    read_command,
)
from ..domain import Catalog, Cdr, Command, Tick
from ..domain.decision import Origin
from ..domain.events import CdrRejected
from ..flow import CATALOG_ROUTES, Refused, admit, follow_ups, refused, route
from . import diagnostics
from .app import RatingApp, RawSchema, create_app
from .fencing import Fenced, PartitionWriter
from .health import HEARTBEAT_EVERY, Health, worker_readiness
from .metrics import Metrics
from .outage import KafkaWatch, Outage, quiet_client_logs
from .positions import Batch, Positions, Record
from .positions import TopicPartition as TPKey
from .processor import RatingProcessor, Recovered, decision_id, recover
from .publisher import BatchProducer, DeliveryFailed
from .recovery import (
    committed_offsets,
    read_decision_at,
    read_decisions,
    read_inputs,
    read_latest,
)
from .routed import RoutedGroup, decode_routed
from .settings import WorkerSettings
from .snapshots import decode_partition, encode_partition
from .topics import Topics

log = logging.getLogger("rating-engine")

AGENT_CRASHED = 70
"""Exit status of a worker whose agent failed (EX_SOFTWARE)."""

Agent = Callable[[faust.StreamT], AsyncIterator[None]]


def stop_process_on_error(agent: Agent) -> Agent:
    """An agent that fails takes the whole worker down with a non-zero exit.

    Faust would restart the agent inside a process that carries on (and stays "healthy"),
    or leave it stopped; either hides the failure. A dead process is restarted by whatever
    supervises it and resumes from its durable state, like after SIGKILL.
    """

    async def run(stream: faust.StreamT) -> AsyncIterator[None]:
        try:
            async for item in agent(stream):
                yield item
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except BaseException:
            log.critical("agent failed; stopping the worker", exc_info=True)
            logging.shutdown()
            os._exit(AGENT_CRASHED)

    return run


FENCE_HOLD = 2.0
"""A fenced partition stays dropped for this many session timeouts. A worker fenced because
it lost the partition is out of the group by then (its next heartbeat after a pause fails
at once, and the rebalance revokes the partition); if it still holds the partition after
that, it is the owner again (its own transaction outlived the broker's timeout, say), and
recovers the partition like a new owner: fencing first, then reading the log, which is
exact whoever wins."""
EXIT_DELIVERY_FAILED = 75
"""Exit status when Kafka refused what a batch produced (the process stops at once, before
Faust could commit the batch's input offsets; a restart redoes the batch exactly)."""


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as in every producer here) gives
    ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class Topology:
    """The agents of one worker and the state they share (none of it module-level)."""

    def __init__(
        self, app: RatingApp, settings: WorkerSettings, catalog: Catalog, topics: Topics
    ) -> None:
        self.app = app
        self.settings = settings
        self.catalog = catalog
        self.names = topics
        self.processor = RatingProcessor(catalog)
        self.metrics = Metrics()
        self.health = Health()
        outage = Outage("kafka", "Kafka", self.health, self.metrics.retry)
        self.kafka = KafkaWatch(outage, lambda: self.clock_out.producer.list_topics(timeout=2.0))
        quiet_client_logs(outage)
        self.recovering: dict[int, asyncio.Future[None]] = {}
        partitions = topics.wallet_events.partitions
        self.snapshot_at: dict[int, float] = {}
        self.snapshotted: dict[int, int] = {}
        """The ``wallet.events`` offset of each partition's last snapshot."""
        self.positions = app.positions = Positions(self._committed, self._read_back)
        self.starts: dict[TPKey, asyncio.Future[dict[TPKey, int]]] = {}
        self.max_message_bytes = max(t.max_message_bytes or 0 for t in topics.all) or None
        # One producer per agent: each waits for its own records only. The rate agent
        # writes through one transactional producer per owned wallet partition (fencing.py).
        self.enrich_out = BatchProducer(
            settings.bootstrap, f"{settings.app_id}-enrich", on_error=self.kafka.on_error
        )
        self.clock_out = BatchProducer(
            settings.bootstrap, f"{settings.app_id}-clock", on_error=self.kafka.on_error
        )
        self.writers: dict[int, PartitionWriter] = {}
        """The producer of each wallet partition this worker owns and has recovered."""
        self.fenced: dict[int, float] = {}
        """Partitions whose producer was fenced, with when: not this worker's for a while
        (`FENCE_HOLD`), or until assigned again."""
        self.homes: dict[str, int] = {}
        """Wallet -> its partition (murmur2), computed once per wallet."""
        self.commits = ThreadPoolExecutor(partitions, thread_name_prefix="commit")

        def topic(*names: str) -> faust.TopicT:
            return app.topic(*names, schema=RawSchema())

        self.raw = topic(topics.cdr_raw.name)
        self.wallet_inputs = frozenset({topics.cdr_by_wallet.name, topics.wallet_commands.name})
        self.inputs = topic(topics.cdr_by_wallet.name, topics.wallet_commands.name)

        app.agent(self.raw, name="enrich")(stop_process_on_error(self.enrich))
        app.agent(self.inputs, name="rate")(stop_process_on_error(self.rate))
        if settings.tick_interval > 0:
            app.timer(settings.tick_interval, name="clock")(self.clock)
        app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]
        app.on_rebalance_complete.connect(self._on_rebalanced)  # type: ignore[arg-type]
        app.timer(HEARTBEAT_EVERY, name="heartbeat")(self.heartbeat)
        app.task(self._diagnostics)
        if settings.metrics_port:
            self.metrics.serve(settings.metrics_port, self.health)

    # -- helpers ---------------------------------------------------------------------------

    def _batches(self, stream: faust.StreamT) -> AsyncIterator[list[faust.EventT]]:
        """Batches of input events. Faust acks them when the agent comes back for more;
        the offsets committed do not follow those acks but `Positions` (see positions.py)."""
        # take_events exists on faust-streaming's Stream but not on its StreamT protocol.
        taker: Any = stream
        return taker.take_events(self.settings.batch_size, within=self.settings.batch_within)

    async def _durable(self, producer: BatchProducer) -> None:
        """Wait until the batch's output is acknowledged; if Kafka refused any of it, stop
        the process now: the next batch made durable would move the committed offsets past
        inputs whose output was lost.

        A worker told to stop while it waits lets the batch finish first: Kafka writes it
        whether or not anyone waits, and its inputs, not committed, are read again by the
        partition's next owner (which recognises them as decided, see processor.py).
        """
        try:
            try:
                await producer.durable()
            except asyncio.CancelledError:
                await asyncio.shield(producer.durable())
                raise
        except DeliveryFailed as exc:
            log.critical("%s; stopping before the batch's inputs are committed", exc)
            logging.shutdown()
            os._exit(EXIT_DELIVERY_FAILED)

    def _reject(
        self, producer: BatchProducer | PartitionWriter, rejection: Rejected, key: bytes | None
    ) -> None:
        self.metrics.rejected.labels(rejection.reason).inc()
        limit = self.names.cdr_rejected.max_message_bytes
        rejection = fit(
            rejection, min(limit, REJECTION_MAX_BYTES) if limit else REJECTION_MAX_BYTES
        )
        producer.produce(self.names.cdr_rejected.name, key, encode(rejection))

    def _failed(self, stage: str, exc: Exception, where: str, raw: bytes) -> Rejected:
        """An input whose decoding or decision raised: rejected, so its partition goes on."""
        self.metrics.internal_errors.labels(stage).inc()
        log.error("%s failed on %s; rejected as internal_error", stage, where, exc_info=exc)
        return internal_error(exc, where, raw)

    async def _inputs(self, events: list[faust.EventT]) -> Batch:
        before = self.positions.read_back
        batch = await self.positions.inputs(events)
        if self.positions.read_back > before:
            self.metrics.read_back.inc(self.positions.read_back - before)
            log.warning(
                "read back %d records the consumer skipped", self.positions.read_back - before
            )
        return batch

    async def _committed(self, topic: str, partition: int) -> int:
        """Where the group goes on in a partition (looked up for the whole assignment at
        once when the rebalance completes, so the first batch does not wait for each)."""
        starts = self.starts.get((topic, partition))
        if starts is None:
            starts = self._look_up_starts([(topic, partition)])
        return (await starts)[(topic, partition)]

    def _look_up_starts(self, tps: list[tuple[str, int]]) -> asyncio.Future[dict[TPKey, int]]:
        loop = asyncio.get_running_loop()
        group, bootstrap = self.settings.app_id, self.settings.bootstrap
        future = loop.run_in_executor(None, committed_offsets, bootstrap, group, tps)
        for tp in tps:
            self.starts[tp] = future
        return future

    async def _read_back(self, topic: str, partition: int, start: int, end: int) -> list[Any]:
        loop = asyncio.get_running_loop()
        bootstrap = self.settings.bootstrap
        return await loop.run_in_executor(
            None, read_inputs, bootstrap, topic, partition, start, end
        )

    # -- enrich ----------------------------------------------------------------------------

    async def enrich(self, stream: faust.StreamT) -> AsyncIterator[None]:
        raw_topic = self.names.cdr_raw.name
        by_wallet = self.names.cdr_by_wallet.name
        out = self.enrich_out
        catalog = self.catalog
        replace = msgspec.structs.replace
        async for events in self._batches(stream):
            batch = await self._inputs(events)
            self.metrics.received.inc(len(batch.inputs))
            # (wallet partition, raw partition) -> the CDRs of one record, in offset order
            groups: dict[tuple[int, int], RoutedGroup] = {}
            for msg in batch.inputs:
                raw = msg.value
                try:
                    cdr = decode_cdr(raw)
                    # No SIM moves here: see flow.CATALOG_ROUTES.
                    wallet = (
                        cdr
                        if isinstance(cdr, Rejected)
                        else route(catalog, CATALOG_ROUTES, cdr, "", raw)
                    )
                except Exception as exc:
                    where = f"{raw_topic}/{msg.partition}@{msg.offset}"
                    self._reject(out, self._failed("enrich", exc, where, raw), msg.key)
                    continue
                if not isinstance(cdr, Rejected):
                    if not isinstance(wallet, Rejected):
                        target = self._home(wallet)
                        group = groups.get((target, msg.partition))
                        if group is None:
                            group = groups[(target, msg.partition)] = RoutedGroup(msg.partition)
                        group.add(wallet, msg.offset, round(msg.timestamp * 1000), raw)
                        if group.full():
                            del groups[(target, msg.partition)]
                            out.produce(by_wallet, wallet.encode(), group.encode(), target)
                        continue
                    cdr = wallet
                origin = f"{raw_topic}/{msg.partition}@{msg.offset}"
                self._reject(out, replace(cdr, origin=origin), msg.key)
            for (target, _), group in groups.items():
                # Keyed by its first wallet: every wallet of the record has this partition.
                out.produce(by_wallet, group.wallets[0].encode(), group.encode(), target)
            await self._durable(out)
            self.positions.made_durable(batch)
            yield None

    # -- rate ------------------------------------------------------------------------------

    async def _recover(self, partition: int) -> None:
        """Rebuild a wallet partition before deciding anything on it."""
        await self._recovery(partition)

    def _recovery(self, partition: int) -> asyncio.Future[None]:
        """The (one) recovery of a partition: fence its previous owner, then its snapshot
        (verified against the log) and ``wallet.events`` after it."""
        future = self.recovering.get(partition)
        if future is None:
            loop = asyncio.get_running_loop()
            topic = self.names.wallet_events.name
            snapshots = self.names.wallet_snapshots.name
            bootstrap, app_id = self.settings.bootstrap, self.settings.app_id

            def load() -> tuple[PartitionWriter, Recovered]:
                writer = PartitionWriter(
                    bootstrap,
                    app_id,
                    partition,
                    self.max_message_bytes,
                    on_error=self.kafka.on_error,
                )
                # First fence, then read: what the previous owner may still send is aborted,
                # so the log read next is all that will ever be committed before us.
                writer.init()
                snapshot, unreadable = None, False
                raw = read_latest(bootstrap, snapshots, partition)
                if raw:
                    try:
                        number, snapshot = decode_partition(raw)
                    except msgspec.MsgspecError:
                        unreadable = True
                    else:
                        unreadable = number != partition
                        snapshot = None if unreadable else snapshot
                recovered = recover(
                    snapshot,
                    lambda offset: read_decision_at(bootstrap, topic, partition, offset),
                    lambda after: read_decisions(bootstrap, topic, partition, after),
                )
                if unreadable:
                    recovered = recovered._replace(source="mismatch")
                return writer, recovered

            async def run() -> None:
                self.metrics.recovering.inc()
                try:
                    writer, (state, count, source) = await loop.run_in_executor(None, load)
                finally:
                    self.metrics.recovering.dec()
                if self.recovering.get(partition) is not future:
                    # Revoked while it ran: another worker may have decided more since, so
                    # this state must not come back if the partition returns here.
                    log.info("partition %d revoked during its recovery; dropped", partition)
                    writer.close()
                    return
                self.writers[partition] = writer
                self.processor.install(partition, state)
                self.snapshotted[partition] = state.events_offset
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

            future = self.recovering[partition] = asyncio.ensure_future(run())
        return future

    async def _writer(self, partition: int) -> PartitionWriter | None:
        """The partition's producer with a transaction open for this batch (and the
        partition's snapshot in it when one is due), or ``None`` when the partition is not
        this worker's (fenced, or revoked while it recovered)."""
        fenced_at = self.fenced.get(partition)
        if fenced_at is not None:
            if time.monotonic() - fenced_at < FENCE_HOLD * self.settings.session_timeout:
                return None
            del self.fenced[partition]
        if not self.processor.recovered(partition):
            await self._recover(partition)
        writer = self.writers.get(partition)
        if writer is None or not self.processor.recovered(partition):
            return None
        try:
            writer.begin()
            self._snapshot_if_due(partition, writer)
        except Fenced as exc:
            self._fenced(partition, writer, exc)
            return None
        return writer

    async def rate(self, stream: faust.StreamT) -> AsyncIterator[None]:
        metrics = self.metrics
        processor = self.processor
        async for events in self._batches(stream):
            batch = await self._inputs(events)
            counts: collections.Counter[str] = collections.Counter()
            timings: list[tuple[int, Cdr]] = []  # (ingested ms, CDR) per CDR received
            # Recoveries first, so no transaction stays open while one runs.
            for partition in {msg.partition for msg in batch.inputs}:
                if partition not in self.fenced and not processor.recovered(partition):
                    await self._recover(partition)
            open_: dict[int, PartitionWriter | None] = {}  # this batch's transactions
            for msg in batch.inputs:
                partition = msg.partition
                if partition in open_:
                    out = open_[partition]
                else:
                    out = open_[partition] = await self._writer(partition)
                if out is None:
                    continue  # not ours: nothing is decided, and its offsets stay as they are
                try:
                    self._answer(out, msg, counts, timings)
                except Fenced as exc:
                    self._fenced(partition, out, exc)
                    open_[partition] = None
            writers = {p: w for p, w in open_.items() if w is not None}
            committed = await self._commit(writers)
            # Only the inputs of partitions whose transaction this worker committed, and still
            # owns, may have their offsets committed.
            ends = {tp: end for tp, end in batch.ends.items() if tp[1] in committed}
            self.positions.made_durable(Batch(batch.inputs, ends))
            # The others start again from the group's commit if they come back here.
            self._restart([tp for tp in batch.ends if tp not in ends])
            now = time.time()
            for ingested, cdr in timings:
                metrics.ingest_latency.observe(max(0.0, now - ingested / 1000))
                metrics.cdr_age.observe(max(0.0, now - cdr.started_at.timestamp()))
            self._count(counts)
            self._observe_lag(batch.ends)
            metrics.suspended.set(processor.suspended())
            yield None

    def _answer(
        self,
        out: PartitionWriter,
        msg: Record,
        counts: collections.Counter[str],
        timings: list[tuple[int, Cdr]],
    ) -> None:
        """Decide one input record (a command, or a group of routed CDRs) into ``out``."""
        commands_topic = self.names.wallet_commands.name
        partition, value = msg.partition, msg.value
        if msg.topic == commands_topic:
            self.metrics.commands.inc()
            where = f"{commands_topic}/{partition}@{msg.offset}"
            try:
                command = read_command(value, where)
            except Exception as exc:
                command = self._failed("decode", exc, where, value)
            if not isinstance(command, Rejected):
                wallet = command.wallet_id
                if msg.key != wallet.encode() or self._home(wallet) != partition:
                    command = wrong_partition(msg.key, wallet, where, value)
            if isinstance(command, Rejected):
                self._reject(out, command, msg.key)
                return
            origin = Origin(commands_topic, partition, msg.offset)
            self._decide(out, partition, command.wallet_id, command, origin, counts, value)
            return
        try:
            routed = decode_routed(value)
        except Exception as exc:  # enrich wrote it: only a foreign record fails here
            where = f"{self.names.cdr_by_wallet.name}/{partition}@{msg.offset}"
            detail = f"{type(exc).__name__}: {exc}"[:1000]
            bad = Rejected("malformed", detail, where, **raw_fields(value))
            self._reject(out, bad, msg.key)
            return
        raw_topic, raw_partition = self.names.cdr_raw.name, routed.partition
        for wallet, offset, ingested, cdr in zip(
            routed.wallets, routed.offsets, routed.ingested, routed.cdrs, strict=True
        ):
            timings.append((ingested, cdr))
            origin = Origin(raw_topic, raw_partition, offset)
            if self._home(wallet) != partition:
                where = f"{raw_topic}/{raw_partition}@{offset}"
                self._reject(out, wrong_partition(msg.key, wallet, where, encode(cdr)), msg.key)
                continue
            self._decide(out, partition, wallet, cdr, origin, counts)

    def _home(self, wallet: str) -> int:
        """The wallet partition every producer here places ``wallet`` on (murmur2)."""
        home = self.homes.get(wallet)
        if home is None:
            home = self.homes[wallet] = partition_of(
                wallet.encode(), self.names.cdr_by_wallet.partitions
            )
        return home

    def _decide(
        self,
        out: PartitionWriter,
        partition: int,
        wallet: str,
        item: Cdr | Command,
        origin: Origin,
        counts: collections.Counter[str],
        raw: bytes | None = None,
    ) -> None:
        """Admit and decide one input (engine.flow), and produce its decision and follow-ups
        in the partition's transaction (not yet committed).

        An input no wallet may take (admission: unknown wallet, instant out of bounds) and
        one whose decision raised are rejected on ``cdr.rejected``: no event, no state, and the
        partition goes on."""
        processor = self.processor
        if processor.already_decided(partition, origin):
            counts["skipped"] += 1
            return
        where = "{}/{}@{}".format(*origin)
        try:
            admit(self.catalog, wallet, item)
            decision = processor.decide(partition, wallet, item, origin)
        except Refused as refusal:
            self._reject(out, refused(refusal, where, wallet, item), _key(item))
            return
        except Exception as exc:
            bad = self._failed("decide", exc, where, raw if raw is not None else encode(item))
            self._reject(out, msgspec.structs.replace(bad, wallet_id=wallet), _key(item))
            return
        if decision is None:
            return
        key = wallet.encode()
        out.produce(self.names.wallet_events.name, key, encode(decision), partition)
        out.last_decision = decision_id(decision)
        counts["decisions"] += 1
        for e in decision.events:
            counts[type(e).__name__] += 1
            if isinstance(e, CdrRejected):
                counts["rejected:" + e.reason] += 1
        actions, charges = follow_ups(decision)
        for action in actions:
            # In the decision's transaction: the action exists exactly when the decision
            # does (a consumer reading read_uncommitted may still see an aborted one).
            out.produce(self.names.network_actions.name, key, encode(action))
        for charge in charges:
            out.produce(self.names.wallet_commands.name, charge.wallet_id.encode(), encode(charge))

    async def _commit(self, writers: dict[int, PartitionWriter]) -> set[int]:
        """Commit each partition's transaction (concurrently, off the event loop); the
        partitions committed by the producer that still owns them.

        A fenced partition is dropped (`_fenced`). Any other failure stops the process
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
                self._fenced(partition, writer, result)
                continue
            if isinstance(result, BaseException):
                log.critical(
                    "%s; stopping before the batch's inputs are committed",
                    result,
                    exc_info=result,
                )
                logging.shutdown()
                os._exit(EXIT_DELIVERY_FAILED)
            part = self.processor.partitions.get(partition)
            if part is None or self.writers.get(partition) is not writer:
                continue  # revoked meanwhile: the next owner reads what was committed
            offset = writer.offsets.get((events_topic, partition))
            if offset is not None and offset > part.events_offset:
                part.events_offset = offset
                part.last_decision = writer.last_decision
            committed.add(partition)
        return committed

    def _fenced(self, partition: int, writer: PartitionWriter, why: Exception) -> None:
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
        self._restart([tp for tp in mine if tp[0] in self.wallet_inputs])
        self.metrics.fenced.inc()
        self.metrics.partitions.set(len(self.processor.partitions))
        log.warning(
            "partition %d fenced: another worker owns it now; its state is dropped and "
            "nothing of this batch for it was written (%s)",
            partition,
            why,
        )

    def _restart(self, tps: list[TPKey]) -> None:
        """Input partitions whose inputs were not decided here: if they come back, they start
        again from the group's committed offset, looked up afresh."""
        self.positions.forget(tps)
        for tp in tps:
            self.starts.pop(tp, None)

    def _snapshot_if_due(self, partition: int, writer: PartitionWriter) -> None:
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
        self.snapshot(partition, writer)

    def snapshot(self, partition: int, writer: PartitionWriter) -> None:
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
        key = f"partition-{partition}".encode()
        writer.produce(self.names.wallet_snapshots.name, key, raw, partition)
        self.snapshotted[partition] = part.events_offset
        self.metrics.snapshots.inc()
        log.info("partition %d snapshot at offset %d", partition, part.events_offset)

    def _count(self, counts: collections.Counter[str]) -> None:
        metrics = self.metrics
        for name, n in counts.items():
            if name == "skipped":
                metrics.skipped.inc(n)
            elif name == "decisions":
                metrics.decisions.inc(n)
            elif name.startswith("rejected:"):
                metrics.rejected.labels(name.partition(":")[2]).inc(n)
            else:
                metrics.events.labels(name).inc(n)
                if name == "UsageRated":
                    metrics.rated.inc(n)

    def _observe_lag(self, ends: dict[tuple[str, int], int]) -> None:
        consumer: Any = self.app.consumer
        for (topic, partition), following in ends.items():
            highwater = consumer.highwater(TP(topic, partition))
            if highwater is not None:
                lag = max(0, highwater - following)
                self.metrics.lag.labels(topic, str(partition)).set(lag)

    async def heartbeat(self) -> None:
        """Liveness and readiness for /healthz and /readyz, from the event loop itself."""
        self.health.beat()
        self.kafka.check()
        assigned = self._wallet_partitions(set(self.app.consumer.assignment()))
        busy = self.app.rebalancing or self.app.in_recovery
        self.health.ready(worker_readiness(busy, assigned, self.processor.recovered))

    def _wallet_partitions(self, tps: set[Any]) -> set[int]:
        return {tp.partition for tp in tps if tp.topic in self.wallet_inputs}

    async def _on_rebalanced(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        """Start rebuilding every assigned wallet partition now (tables are restored by
        then), not at its first input, so the worker is ready before traffic arrives."""
        assigned: set[Any] = set(self.app.consumer.assignment())
        inputs = {self.names.cdr_raw.name, *self.wallet_inputs}
        fresh = [(tp.topic, tp.partition) for tp in assigned if tp.topic in inputs]
        fresh = [tp for tp in fresh if tp not in self.starts]
        if fresh:
            self._look_up_starts(fresh)
        for partition in self._wallet_partitions(assigned):
            if not self.processor.recovered(partition):
                self._recovery(partition)

    async def _on_revoked(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        """Forget partitions another worker may now change; recover them if they return."""
        revoked: set[Any] = args[0] if args else kwargs.get("revoked", set())
        partitions = self._wallet_partitions(revoked)
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
        for tp in revoked:  # their lag is now the new owner's to report
            self.metrics.lag.remove(tp.topic, str(tp.partition))

    async def _diagnostics(self) -> None:
        diagnostics.install(self.app, self.recovering)

    # -- clock -----------------------------------------------------------------------------

    async def clock(self) -> None:
        now = datetime.now(UTC).replace(microsecond=0)
        for wallet_id in self.catalog.wallets:
            tick = Tick(
                command_id=f"tick:{wallet_id}:{now.isoformat()}", wallet_id=wallet_id, at=now
            )
            self.clock_out.produce(
                self.names.wallet_commands.name, wallet_id.encode(), encode(tick)
            )
        await self._durable(self.clock_out)


def wrong_partition(key: bytes | None, wallet: str, where: str, raw: bytes) -> Rejected:
    """The rejection of a wallet input keyed or placed for another wallet (or placed by a
    partitioner other than murmur2): deciding it would fork the wallet's history on a
    partition that does not own it."""
    detail = f"record keyed {key!r} is not on the partition that owns wallet {wallet!r}"
    return Rejected("wrong_partition", detail, where, wallet_id=wallet, **raw_fields(raw))


def _key(item: Cdr | Command) -> bytes | None:
    """The key of a rejection on ``cdr.rejected``: the ICCID, when there is one."""
    return item.iccid.encode() if isinstance(item, Cdr) else None


def build(settings: WorkerSettings, catalog: Catalog, topics: Topics) -> tuple[faust.App, Topology]:
    app = create_app(settings)
    return app, Topology(app, settings, catalog, topics)
