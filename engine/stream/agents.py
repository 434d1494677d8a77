"""The streaming topology, read top to bottom: topics → enrich → rate (+ the clock).

- ``enrich``: ``cdr.raw`` → decode and validate → ICCID to wallet → ``cdr.by-wallet``, keyed
  by wallet: one record per wallet and ``cdr.raw`` partition of a batch (routed.py), each
  CDR with its origin (raw partition and offset); anything that fails goes to
  ``cdr.rejected`` with its bytes, the reason and the origin.
- ``rate``: ``cdr.by-wallet`` + ``wallet.commands`` (co-partitioned by wallet) → the pure
  decider → one ``Decision`` record per input on ``wallet.events``, same partition; with it,
  the decision's follow-ups: bar / unbar actions on ``network.actions`` and the routed
  charges of split billing on ``wallet.commands`` of the paying wallet.
- ``clock``: a timer sending ``Tick`` commands, so MRCs and expiries happen without traffic.

Faust consumes (``take_events`` batches; the offsets it commits are the engine's, see
positions.py); the agents produce through confluent-kafka (publisher.BatchProducer) and wait
until what a batch produced is acknowledged by Kafka before the batch's input offsets may
be committed, so a crash can only
make Kafka deliver inputs again, never lose them; the rating processor recognises inputs it
already decided (see processor.py), so redelivery charges nothing twice.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
import weakref
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import faust
import msgspec
from aiokafka.partitioner import murmur2
from faust.streams import _current_event
from faust.types import TP

from ..codec import (
    Rejected,
    decode_cdr,
    decode_command,
    encode,
    raw_fields,
    route_cdr,
)
from ..domain import Catalog, Cdr, Command, Tick
from ..domain.events import BarSims, CdrRejected, UnbarSims, UsageRated
from ..domain.routing import routed_charges
from . import diagnostics
from .app import RatingApp, RawSchema, create_app
from .health import HEARTBEAT_EVERY, Health, worker_readiness
from .metrics import Metrics
from .outage import KafkaWatch, Outage, quiet_client_logs
from .positions import TP as TPKey
from .positions import Batch, Positions
from .processor import PartitionState, RatingProcessor, rebuild
from .publisher import BatchProducer, DeliveryFailed
from .recovery import committed_offsets, read_decisions, read_inputs
from .routed import RoutedGroup, decode_routed
from .settings import WorkerSettings
from .snapshots import decode_snapshot, encode_snapshot
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


SNAPSHOTS = "snapshots"
"""The Faust table of partition snapshots (changelog ``{app_id}-snapshots-changelog``)."""
EXIT_DELIVERY_FAILED = 75
"""Exit status when Kafka refused what a batch produced (the process stops at once, before
Faust could commit the batch's input offsets; a restart redoes the batch exactly)."""


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as in every producer here) gives
    ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def snapshot_key(partition: int, partitions: int) -> bytes:
    """A table key that Kafka's partitioner (murmur2) puts on ``partition``, so a partition's
    snapshot lives in the changelog partition its owner restores."""
    for salt in range(1_000_000):
        key = f"partition-{partition}-{salt}".encode()
        if partition_of(key, partitions) == partition:
            return key
    raise AssertionError("unreachable: murmur2 spreads keys over every partition")


class SnapshotTable(faust.Table):
    """A table whose keys name their partition: ``snapshot_key(p)`` is written to changelog
    partition ``p`` whichever event (or batch) is being processed when it is written."""

    def partition_for_key(self, key: Any) -> int | None:
        text = bytes(key).decode()
        return int(text.split("-")[1])


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
        self.kafka = KafkaWatch(outage, lambda: self.rate_out.producer.list_topics(timeout=2.0))
        quiet_client_logs(outage)
        self.recovering: dict[int, asyncio.Future[None]] = {}
        partitions = topics.wallet_events.partitions
        self.snapshot_keys = {p: snapshot_key(p, partitions) for p in range(partitions)}
        self.snapshots: Any = app.tables.add(
            SnapshotTable(
                app,
                name=SNAPSHOTS,
                key_type=bytes,
                value_type=bytes,
                partitions=partitions,
                beacon=app.tables.beacon,
            )
        )
        self.snapshot_at: dict[int, float] = {}
        self.positions = app.positions = Positions(self._committed, self._read_back)
        self.starts: dict[TPKey, asyncio.Future[dict[TPKey, int]]] = {}
        # One producer per agent: each waits for its own records only.
        self.enrich_out = BatchProducer(
            settings.bootstrap, f"{settings.app_id}-enrich", on_error=self.kafka.on_error
        )
        self.rate_out = BatchProducer(
            settings.bootstrap,
            f"{settings.app_id}-rate",
            max(t.max_message_bytes or 0 for t in topics.all) or None,
            on_error=self.kafka.on_error,
        )

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

    def _reject(self, producer: BatchProducer, rejection: Rejected, key: bytes | None) -> None:
        self.metrics.rejected.labels(rejection.reason).inc()
        producer.produce(self.names.cdr_rejected.name, key, encode(rejection))

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
        partitions = self.names.cdr_by_wallet.partitions
        placed: dict[str, int] = {}  # wallet -> its partition (the producers' murmur2)
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
                cdr = decode_cdr(raw)
                if not isinstance(cdr, Rejected):
                    wallet = route_cdr(catalog, {}, cdr, "", raw)
                    if not isinstance(wallet, Rejected):
                        target = placed.get(wallet)
                        if target is None:
                            target = placed[wallet] = partition_of(wallet.encode(), partitions)
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
        """The (one) recovery of a partition: its snapshot, then ``wallet.events`` after it."""
        future = self.recovering.get(partition)
        if future is None:
            loop = asyncio.get_running_loop()
            topic = self.names.wallet_events.name
            bootstrap = self.settings.bootstrap

            raw = self.snapshots.get(self.snapshot_keys[partition])

            def load() -> tuple[PartitionState, int]:
                snapshot = None
                if raw:
                    _, offset, decided, wallets, recent = decode_snapshot(raw)
                    snapshot = PartitionState(wallets, decided, offset, recent)
                after = snapshot.events_offset if snapshot else -1
                return rebuild(read_decisions(bootstrap, topic, partition, after), snapshot)

            async def run() -> None:
                self.metrics.recovering.inc()
                try:
                    state, count = await loop.run_in_executor(None, load)
                finally:
                    self.metrics.recovering.dec()
                if self.recovering.get(partition) is not future:
                    # Revoked while it ran: another worker may have decided more since, so
                    # this state must not come back if the partition returns here.
                    log.info("partition %d revoked during its recovery; dropped", partition)
                    return
                self.processor.install(partition, state)
                self.metrics.recovered_decisions.inc(count)
                self.metrics.partitions.set(len(self.processor.partitions))
                log.info(
                    "partition %d recovered from %s and %d decisions",
                    partition,
                    "a snapshot" if raw else "no snapshot",
                    count,
                )

            future = self.recovering[partition] = asyncio.ensure_future(run())
        return future

    async def rate(self, stream: faust.StreamT) -> AsyncIterator[None]:
        commands_topic = self.names.wallet_commands.name
        by_wallet = self.names.cdr_by_wallet.name
        raw_topic = self.names.cdr_raw.name
        events_topic = self.names.wallet_events.name
        metrics = self.metrics
        processor = self.processor
        async for events in self._batches(stream):
            batch = await self._inputs(events)
            counts: collections.Counter[str] = collections.Counter()
            timings: list[tuple[int, Cdr]] = []  # (ingested ms, CDR) per CDR received
            latest: dict[int, faust.EventT] = {}  # the last input event of each partition
            for msg in batch.inputs:
                partition, value = msg.partition, msg.value
                if msg.event is not None:
                    latest[partition] = msg.event
                if not processor.recovered(partition):
                    await self._recover(partition)
                if msg.topic == commands_topic:
                    metrics.commands.inc()
                    try:
                        command = decode_command(value)
                    except msgspec.MsgspecError as exc:
                        where = f"{commands_topic}/{partition}@{msg.offset}"
                        bad = Rejected("malformed_command", str(exc), where, **raw_fields(value))
                        self._reject(self.rate_out, bad, msg.key)
                        continue
                    origin = (commands_topic, partition, msg.offset)
                    self._decide(partition, command.wallet_id, command, origin, counts)
                    continue
                try:
                    routed = decode_routed(value)
                except msgspec.MsgspecError as exc:  # enrich wrote it: cannot happen; say so
                    where = f"{by_wallet}/{partition}@{msg.offset}"
                    bad = Rejected("malformed", str(exc), where, **raw_fields(value))
                    self._reject(self.rate_out, bad, msg.key)
                    continue
                raw_partition = routed.partition
                for wallet, offset, ingested, cdr in zip(
                    routed.wallets, routed.offsets, routed.ingested, routed.cdrs, strict=True
                ):
                    timings.append((ingested, cdr))
                    origin = (raw_topic, raw_partition, offset)
                    self._decide(partition, wallet, cdr, origin, counts)
            await self._durable(self.rate_out)
            self.positions.made_durable(batch)
            self._written(events_topic, latest)
            now = time.time()
            for ingested, cdr in timings:
                metrics.ingest_latency.observe(max(0.0, now - ingested / 1000))
                metrics.cdr_age.observe(max(0.0, now - cdr.started_at.timestamp()))
            self._count(counts)
            self._observe_lag(batch.ends)
            metrics.suspended.set(processor.suspended())
            yield None

    def _decide(
        self,
        partition: int,
        wallet: str,
        item: Cdr | Command,
        origin: tuple[str, int, int],
        counts: collections.Counter[str],
    ) -> None:
        """Decide one input and produce its decision and follow-ups (not yet durable)."""
        processor = self.processor
        if processor.already_decided(partition, origin):
            counts["skipped"] += 1
            return
        decision = processor.decide(partition, wallet, item, origin)
        if decision is None:
            return
        out = self.rate_out
        key = wallet.encode()
        out.produce(self.names.wallet_events.name, key, encode(decision), partition)
        counts["decisions"] += 1
        split = False
        for e in decision.events:
            counts[type(e).__name__] += 1
            if isinstance(e, UsageRated):
                split = split or e.payer != e.wallet_id
            elif isinstance(e, CdrRejected):
                counts["rejected:" + e.reason] += 1
            elif isinstance(e, BarSims | UnbarSims):
                # Produced with the decision, before it is durable: after a crash the same
                # decision is made again, so an action may repeat (same event id), never
                # go missing.
                out.produce(self.names.network_actions.name, key, encode(e))
        if split:
            for charge in routed_charges(decision.events):
                out.produce(
                    self.names.wallet_commands.name, charge.wallet_id.encode(), encode(charge)
                )

    def _written(self, events_topic: str, latest: dict[int, faust.EventT]) -> None:
        """Note how far each partition's decisions reached ``wallet.events``, and snapshot a
        partition that is due (everything snapshotted is already durable)."""
        every = self.settings.snapshot_every
        now = time.monotonic()
        offsets = self.rate_out.offsets
        for partition in latest:
            part = self.processor.partitions.get(partition)
            offset = offsets.get((events_topic, partition))
            if part is None or offset is None or offset <= part.events_offset:
                continue
            part.events_offset = offset
            last = self.snapshot_at.setdefault(partition, now)
            if every > 0 and now - last >= every:
                self.snapshot(partition, latest[partition])

    def snapshot(self, partition: int, event: faust.EventT) -> None:
        part = self.processor.partitions[partition]
        raw = encode_snapshot(
            partition, part.events_offset, part.decided, part.wallets, part.recent
        )
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
        # Faust's RocksDB store files a write under the partition of the event being
        # processed; in a batch there is none, so name one from this partition.
        token = _current_event.set(weakref.ref(event))
        try:
            self.snapshots[self.snapshot_keys[partition]] = raw
        finally:
            _current_event.reset(token)
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
            self.rate_out.produce(self.names.wallet_commands.name, wallet_id.encode(), encode(tick))
        await self._durable(self.rate_out)


def build(settings: WorkerSettings, catalog: Catalog, topics: Topics) -> tuple[faust.App, Topology]:
    app = create_app(settings)
    return app, Topology(app, settings, catalog, topics)
