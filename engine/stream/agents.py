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

Faust consumes (``take_events`` batches, ``read_committed``; the offsets it commits are the
engine's, see positions.py); the agents produce through confluent-kafka
(producer.BatchProducer, fencing.PartitionWriter) and wait until what a batch produced is
acknowledged (committed) by Kafka before the batch's input offsets may be committed, so a
crash can only make Kafka deliver inputs again, never lose them; the rating processor
recognises inputs it already decided (see processor.py), so redelivery charges nothing twice.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import faust
import msgspec

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
from .app import RatingApp, RawSchema, create_app
from .exits import stop_process_on_error
from .fencing import Fenced, PartitionWriter
from .health import HEARTBEAT_EVERY
from .ownership import Ownership
from .positions import Batch, Record
from .processor import RatingProcessor, decision_id
from .producer import BatchProducer, wait_durable
from .routed import RoutedGroup, decode_routed, partition_of
from .settings import WorkerSettings
from .snapshotter import Snapshotter
from .topics import Topics
from .vitals import Vitals

log = logging.getLogger("rating-engine")


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
        self.vitals = Vitals(app, self.processor, self._probe)
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
        self._wire(app, settings, topics)

    def _wire(self, app: RatingApp, settings: WorkerSettings, topics: Topics) -> None:
        """Topics → agents and timers, and the rebalance callbacks."""

        def topic(*names: str) -> faust.TopicT:
            return app.topic(*names, schema=RawSchema())

        self.raw = topic(topics.cdr_raw.name)
        self.inputs = topic(topics.cdr_by_wallet.name, topics.wallet_commands.name)
        app.agent(self.raw, name="enrich")(stop_process_on_error(self.enrich))
        app.agent(self.inputs, name="rate")(stop_process_on_error(self.rate))
        if settings.tick_interval > 0:
            app.timer(settings.tick_interval, name="clock")(self.clock)
        owner = self.ownership
        app.on_partitions_revoked.connect(owner.on_revoked)  # type: ignore[arg-type]
        app.on_rebalance_complete.connect(owner.on_rebalanced)  # type: ignore[arg-type]
        app.timer(HEARTBEAT_EVERY, name="heartbeat")(self.heartbeat)
        app.task(self._diagnostics)
        if settings.metrics_port:
            self.vitals.serve(settings.metrics_port)

    def _probe(self) -> Any:
        return self.clock_out.producer.list_topics(timeout=2.0)

    # -- helpers ---------------------------------------------------------------------------

    def _batches(self, stream: faust.StreamT) -> AsyncIterator[list[faust.EventT]]:
        """Batches of input events. Faust acks them when the agent comes back for more;
        the offsets committed do not follow those acks but `Positions` (see positions.py)."""
        # take_events exists on faust-streaming's Stream but not on its StreamT protocol.
        taker: Any = stream
        return taker.take_events(self.settings.batch_size, within=self.settings.batch_within)

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
        before = self.positions.read_back
        batch = await self.positions.inputs(events)
        if self.positions.read_back > before:
            self.metrics.read_back.inc(self.positions.read_back - before)
            log.warning(
                "read back %d records the consumer skipped", self.positions.read_back - before
            )
        return batch

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

    async def rate(self, stream: faust.StreamT) -> AsyncIterator[None]:
        metrics = self.metrics
        processor = self.processor
        owner = self.ownership
        async for events in self._batches(stream):
            batch = await self._inputs(events)
            counts: collections.Counter[str] = collections.Counter()
            timings: list[tuple[int, Cdr]] = []  # (ingested ms, CDR) per CDR received
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
                    self._answer(out, msg, counts, timings)
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
            now = time.time()
            for ingested, cdr in timings:
                metrics.ingest_latency.observe(max(0.0, now - ingested / 1000))
                metrics.cdr_age.observe(max(0.0, now - cdr.started_at.timestamp()))
            self.vitals.count(counts)
            self.vitals.observe_lag(batch.ends)
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

    # -- clock and heartbeat ---------------------------------------------------------------

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

    async def heartbeat(self) -> None:
        """Liveness and readiness for /healthz and /readyz, from the event loop itself."""
        owner, consumer = self.ownership, self.app.consumer
        self.vitals.heartbeat(lambda: owner.wallet_partitions(set(consumer.assignment())))

    async def _diagnostics(self) -> None:
        self.vitals.install_report(self.ownership.recovering)


def wrong_partition(key: bytes | None, wallet: str, where: str, raw: bytes) -> Rejected:
    """The rejection of a wallet input keyed or placed for another wallet (or placed by a
    partitioner other than murmur2): deciding it would fork the wallet's history on a
    partition that does not own it."""
    detail = f"record keyed {key!r} is not on the partition that owns wallet {wallet!r}"
    return Rejected("wrong_partition", detail, where, wallet_id=wallet, **raw_fields(raw))


def _key(item: Cdr | Command) -> bytes | None:
    """The key of a rejection on ``cdr.rejected``: the ICCID, when there is one."""
    return item.iccid.encode() if isinstance(item, Cdr) else None


def build(
    settings: WorkerSettings, catalog: Catalog, topics: Topics, revisions: Any = None
) -> tuple[faust.App, Topology]:
    app = create_app(settings)
    return app, Topology(app, settings, catalog, topics)
