"""The streaming topology, read top to bottom: topics → enrich → rate (+ the clock).

- ``enrich``: ``cdr.raw`` → decode and validate → ICCID to wallet → ``cdr.by-wallet``, keyed
  by wallet: one record per wallet and ``cdr.raw`` partition of a batch (routed.py), each
  CDR with its origin (raw partition and offset); anything that fails goes to
  ``cdr.rejected`` with its bytes, the reason and the origin.
- ``rate``: ``cdr.by-wallet`` + ``wallet.commands`` (co-partitioned by wallet) → the pure
  decider → one ``Decision`` record per input on ``wallet.events``, same partition; with it,
  the decision's follow-ups: bar / unbar actions on ``network.actions`` and the routed
  charges of split billing on ``wallet.commands`` of the paying wallet. All a batch writes
  for a wallet partition (and the partition's snapshot, snapshotter.py) is one Kafka
  transaction of that partition's own producer, so a worker that lost the partition is
  fenced (fencing.py); which partitions are this worker's, and their recovery, is
  ownership.py's.
- ``clock``: a timer sending ``Tick`` commands, so MRCs and expiries happen without traffic.
- ``heartbeat``: a timer reporting liveness and readiness (vitals.py).
- ``catalogs``: a timer letting go of catalog revisions no owned wallet is on (processor.py).

Faust consumes (``take_events`` batches, ``read_committed``; the offsets it commits are the
engine's, see positions.py); the agents produce through confluent-kafka
(producer.BatchProducer, fencing.PartitionWriter) and wait until what a batch produced is
acknowledged (committed) by Kafka before the batch's input offsets may be committed, so a
crash can only make Kafka deliver inputs again, never lose them; the rating processor
recognises inputs it already decided (see processor.py), so redelivery charges nothing twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import faust

from ..codec import (
    REJECTION_MAX_BYTES,
    Rejected,
    encode,
    fit,
    internal_error,
)
from ..domain import Catalog, Tick
from ..flow import Revisions, latest
from .app import BUNDLE_MAX, RatingApp, RawSchema, create_app
from .directory import Directory, Table, not_following
from .enricher import Enricher
from .exits import stop_process_on_error
from .fencing import Fenced, PartitionWriter
from .health import HEARTBEAT_EVERY
from .holding import Holding
from .memory import release_free_memory
from .ownership import Ownership
from .positions import Batch
from .processor import REORDER_WINDOW, RETAIN_EVERY, RatingProcessor
from .producer import BatchProducer, wait_durable
from .rater import BatchTally, Rater
from .routed import partition_of
from .settings import WorkerSettings
from .snapshotter import Snapshotter
from .topics import Topics
from .vitals import Vitals

log = logging.getLogger("rating-engine")

HOLD_CHECK_EVERY = 0.5
"""Seconds between looks at the held CDRs (holding.py) when no batch comes."""


class Topology:
    """The agents of one worker and the state they share (none of it module-level)."""

    def __init__(
        self,
        app: RatingApp,
        settings: WorkerSettings,
        catalog: Catalog,
        topics: Topics,
        revisions: Revisions | None = None,
        directory: Table | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.names = topics
        self.processor = RatingProcessor(catalog, revisions)
        self.directory = directory if directory is not None else Table()
        self.vitals = Vitals(
            app, self.processor, self._probe, settings.gc_freeze, settings.gc_threshold
        )
        self.metrics, self.kafka = self.vitals.metrics, self.vitals.kafka
        snapshots = Snapshotter(
            settings, topics.wallet_snapshots.name, self.processor, self.metrics
        )
        self.ownership = Ownership(app, settings, topics, self.processor, self.vitals, snapshots)
        self.positions = app.positions = self.ownership.positions
        # One producer per agent: each waits for its own records only. The rate agent
        # writes through one transactional producer per owned wallet partition (fencing.py).
        self.enrich_out = BatchProducer(
            settings.bootstrap, f"{settings.app_id}-enrich", on_error=self.kafka.on_error
        )
        self.clock_out = BatchProducer(
            settings.bootstrap, f"{settings.app_id}-clock", on_error=self.kafka.on_error
        )
        self.homes: dict[str, int] = {}
        """Wallet -> its partition (murmur2), computed once per wallet."""
        holding = Holding(settings.hold_unknown, REORDER_WINDOW // 2, settings.hold_max)
        self.enricher = Enricher(
            topics,
            self.enrich_out,
            self.metrics,
            holding,
            lambda: latest(self.processor.revisions),
            self.directory.routes,
            self._home,
            self._reject,
            self._failed,
        )
        self.rater = Rater(
            topics, self.processor, self.metrics, self._home, self._reject, self._failed
        )
        self._wire(app, settings, topics)

    def _wire(self, app: RatingApp, settings: WorkerSettings, topics: Topics) -> None:
        """Topics → agents and timers, and the rebalance callbacks."""

        def topic(*names: str, maxsize: int | None = None) -> faust.TopicT:
            return app.topic(*names, schema=RawSchema(), maxsize=maxsize)

        # cdr.raw reaches enrich in bundles of a partition's records (faust_compat.Bundle):
        # a batch is then at most batch_size records, and the stream's queue holds at most
        # as many records as any other stream's.
        self.bundle = min(BUNDLE_MAX, settings.batch_size)
        app.bundled = {topics.cdr_raw.name: self.bundle}
        maxsize = max(1, app.conf.stream_buffer_maxsize // self.bundle)
        self.raw = topic(topics.cdr_raw.name, maxsize=maxsize)
        self.inputs = topic(topics.cdr_by_wallet.name, topics.wallet_commands.name)
        app.agent(self.raw, name="enrich")(stop_process_on_error(self.enrich))
        app.agent(self.inputs, name="rate")(stop_process_on_error(self.rate))
        if settings.tick_interval > 0:
            app.timer(settings.tick_interval, name="clock")(self.clock)
        owner = self.ownership
        app.on_partitions_revoked.connect(owner.on_revoked)  # type: ignore[arg-type]
        app.on_partitions_revoked.connect(self.on_revoked)  # type: ignore[arg-type]
        if settings.hold_unknown > 0:
            app.timer(HOLD_CHECK_EVERY, name="held")(self.release_held)
        app.on_rebalance_complete.connect(owner.on_rebalanced)  # type: ignore[arg-type]
        app.timer(HEARTBEAT_EVERY, name="heartbeat")(self.heartbeat)
        app.timer(RETAIN_EVERY, name="catalogs")(self.retain_catalogs)
        app.task(self._diagnostics)
        if settings.metrics_port:
            self.vitals.serve(settings.metrics_port)

    def _probe(self) -> Any:
        return self.clock_out.producer.list_topics(timeout=2.0)

    # -- helpers ---------------------------------------------------------------------------

    def _batches(self, stream: faust.StreamT, bundle: int = 1) -> AsyncIterator[list[faust.EventT]]:
        """Batches of input events, of at most ``batch_size`` records when an event carries
        at most ``bundle``. Faust acks them when the agent comes back for more; the offsets
        committed do not follow those acks but `Positions` (see positions.py)."""
        # take_events exists on faust-streaming's Stream but not on its StreamT protocol.
        taker: Any = stream
        events = max(1, self.settings.batch_size // bundle)
        return taker.take_events(events, within=self.settings.batch_within)

    async def _durable(self, producer: BatchProducer) -> None:
        await wait_durable(producer)

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
        positions = self.positions
        read_back, passed_over = positions.read_back, positions.passed_over
        batch = await positions.inputs(events)
        if positions.passed_over > passed_over:
            self.metrics.passed_over.inc(positions.passed_over - passed_over)
        if positions.read_back > read_back:
            self.metrics.read_back.inc(positions.read_back - read_back)
            log.warning(
                "read back %d records the consumer skipped", positions.read_back - read_back
            )
        return batch

    # -- enrich ----------------------------------------------------------------------------

    async def enrich(self, stream: faust.StreamT) -> AsyncIterator[None]:
        """``cdr.raw`` → ``cdr.by-wallet`` (enricher.py)."""
        async for events in self._batches(stream, self.bundle):
            batch = await self._inputs(events)
            self.metrics.received.inc(len(batch.inputs))
            async with self.enricher.lock:
                floors = await self.enricher.batch(batch)
                # The floor first: a commit may run between the two, and must not pass a
                # record still held.
                self._hold_floors(floors)
                self.positions.made_durable(batch)
            yield None

    async def release_held(self) -> None:
        """Route the held CDRs a route now covers, or whose hold ran out (holding.py)."""
        async with self.enricher.lock:
            self._hold_floors(await self.enricher.release())

    def _hold_floors(self, floors: dict[int, int | None]) -> None:
        raw = self.names.cdr_raw.name
        for partition, floor in floors.items():
            self.positions.hold((raw, partition), floor)

    async def on_revoked(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        revoked: set[Any] = args[0] if args else kwargs.get("revoked", set())
        raw = self.names.cdr_raw.name
        self.enricher.holding.forget(tp.partition for tp in revoked if tp.topic == raw)

    # -- rate ------------------------------------------------------------------------------

    async def rate(self, stream: faust.StreamT) -> AsyncIterator[None]:
        metrics = self.metrics
        processor = self.processor
        owner = self.ownership
        async for events in self._batches(stream):
            batch = await self._inputs(events)
            tally = BatchTally()
            await self.rater.await_revisions(batch)
            # Recoveries first, so no transaction stays open while one runs.
            for partition in {msg.partition for msg in batch.inputs}:
                if owner.needs_recovery(partition):
                    await owner.recover(partition)
            open_: dict[int, PartitionWriter | None] = {}  # this batch's transactions
            for msg in batch.inputs:
                partition = msg.partition
                if partition in open_:
                    out = open_[partition]
                else:
                    out = open_[partition] = await owner.writer(partition)
                if out is None:
                    continue  # not ours: nothing is decided, and its offsets stay as they are
                try:
                    self.rater.answer(out, msg, tally)
                except Fenced as exc:
                    owner.fenced_out(partition, out, exc)
                    open_[partition] = None
            writers = {p: w for p, w in open_.items() if w is not None}
            committed = await owner.commit(writers)
            # Only the inputs of partitions whose transaction this worker committed, and still
            # owns, may have their offsets committed.
            ends = {tp: end for tp, end in batch.ends.items() if tp[1] in committed}
            self.positions.made_durable(Batch(batch.inputs, ends))
            # The others start again from the group's commit if they come back here.
            owner.restart([tp for tp in batch.ends if tp not in ends])
            self.rater.observe(tally, time.time())
            self.vitals.count(self.rater.counts(tally))
            self.vitals.observe_lag(batch.ends)
            metrics.suspended.set(processor.suspended())
            yield None

    def _home(self, wallet: str) -> int:
        """The wallet partition every producer here places ``wallet`` on (murmur2)."""
        home = self.homes.get(wallet)
        if home is None:
            home = self.homes[wallet] = partition_of(
                wallet.encode(), self.names.cdr_by_wallet.partitions
            )
        return home

    async def clock(self) -> None:
        now = datetime.now(UTC).replace(microsecond=0)
        opened = (w for w, entry in self.directory.wallets.items() if entry.open)
        for wallet_id in dict.fromkeys((*latest(self.processor.revisions).wallets, *opened)):
            tick = Tick(
                command_id=f"tick:{wallet_id}:{now.isoformat()}", wallet_id=wallet_id, at=now
            )
            self.clock_out.produce(
                self.names.wallet_commands.name, wallet_id.encode(), encode(tick)
            )
        await self._durable(self.clock_out)

    async def retain_catalogs(self) -> None:
        """Let go of the built catalogs no wallet here is on any more (processor.py)."""
        self.processor.retain()

    async def heartbeat(self) -> None:
        """Liveness and readiness for /healthz and /readyz, from the event loop itself."""
        owner, consumer = self.ownership, self.app.consumer
        self.vitals.heartbeat(lambda: owner.wallet_partitions(set(consumer.assignment())))
        revisions = self.processor.revisions
        self.metrics.catalogs_built.set(len(getattr(revisions, "built", revisions)))
        stale = not_following(self.directory, revisions)
        self.vitals.health.not_ready_for("shared tables", stale)

    async def _diagnostics(self) -> None:
        self.vitals.install_report(self.ownership.recovering)


def build(
    settings: WorkerSettings,
    catalog: Catalog,
    topics: Topics,
    revisions: Revisions | None = None,
) -> tuple[faust.App, Topology]:
    """The worker's app and topology; reads the shared directory to its end first."""
    directory = Directory(settings.bootstrap, topics.wallet_directory.name)
    directory.start()
    release_free_memory()  # the read's fetch buffers, back to the system
    app = create_app(settings)
    return app, Topology(app, settings, catalog, topics, revisions, directory)
