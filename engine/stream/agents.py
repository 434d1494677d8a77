"""The streaming topology, read top to bottom: topics → enrich → rate → follow (+ the clock).

- ``enrich``: ``cdr.raw`` → decode and validate → ICCID to wallet → ``cdr.by-wallet``, keyed
  by wallet, carrying the record's origin (raw partition and offset) in a header; anything
  that fails goes to ``cdr.rejected`` with its bytes, the reason and the origin.
- ``rate``: ``cdr.by-wallet`` + ``wallet.commands`` (co-partitioned by wallet) → the pure
  decider → one ``Decision`` record per input on ``wallet.events``, same partition.
- ``follow``: ``wallet.events`` → ``network.actions`` (bar / unbar) and the routed charges
  of split billing → ``wallet.commands`` of the paying wallet.
- ``clock``: a timer sending ``Tick`` commands, so MRCs and expiries happen without traffic.

Every agent works in batches (``take_events``) and waits until what a batch produced is
acknowledged by Kafka before the batch's input offsets may be committed, so a crash can only
make Kafka deliver inputs again, never lose them; the rating processor recognises inputs it
already decided (see processor.py), so redelivery charges nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from typing import Any

import faust
import msgspec
from aiokafka.partitioner import murmur2
from faust.streams import _current_event

from ..codec import (
    Decision,
    Rejected,
    decode_cdr,
    decode_command,
    decode_decision,
    encode,
    raw_fields,
    route_cdr,
)
from ..domain import Catalog, Cdr, Command, Tick
from ..domain.events import BarSims, CdrRejected, UnbarSims, UsageRated
from ..domain.routing import routed_charges
from .app import create_app
from .health import HEARTBEAT_EVERY, Health, worker_readiness
from .metrics import Metrics
from .processor import PartitionState, RatingProcessor
from .recovery import read_decisions
from .settings import WorkerSettings
from .snapshots import decode_snapshot, encode_snapshot
from .topics import Topics

log = logging.getLogger("rating-engine")

ORIGIN = "origin"
"""Header on ``cdr.by-wallet`` records: ``<raw partition>:<raw offset>``."""
SNAPSHOTS = "snapshots"
"""The Faust table of partition snapshots (changelog ``{app_id}-snapshots-changelog``)."""
INGESTED = "ingested"
"""Header on ``cdr.by-wallet`` records: the ``cdr.raw`` record's timestamp (epoch seconds)."""


def snapshot_key(partition: int, partitions: int) -> bytes:
    """A table key that Kafka's partitioner (murmur2) puts on ``partition``, so a partition's
    snapshot lives in the changelog partition its owner restores."""
    for salt in range(1_000_000):
        key = f"partition-{partition}-{salt}".encode()
        if (murmur2(key) & 0x7FFFFFFF) % partitions == partition:
            return key
    raise AssertionError("unreachable: murmur2 spreads keys over every partition")


class SnapshotTable(faust.Table):
    """A table whose keys name their partition: ``snapshot_key(p)`` is written to changelog
    partition ``p`` whichever event (or batch) is being processed when it is written."""

    def partition_for_key(self, key: Any) -> int | None:
        text = bytes(key).decode()
        return int(text.split("-")[1])


def _header(headers: Any, name: str) -> bytes | None:
    items = headers.items() if isinstance(headers, dict) else (headers or ())
    for key, value in items:
        if key == name:
            return value if isinstance(value, bytes) else str(value).encode()
    return None


class Topology:
    """The agents of one worker and the state they share (none of it module-level)."""

    def __init__(
        self, app: faust.App, settings: WorkerSettings, catalog: Catalog, topics: Topics
    ) -> None:
        self.app = app
        self.settings = settings
        self.catalog = catalog
        self.names = topics
        self.processor = RatingProcessor(catalog)
        self.metrics = Metrics()
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

        def topic(*names: str) -> faust.TopicT:
            return app.topic(*names, key_serializer="raw", value_serializer="raw")

        self.raw = topic(topics.cdr_raw.name)
        self.by_wallet = topic(topics.cdr_by_wallet.name)
        self.inputs = topic(topics.cdr_by_wallet.name, topics.wallet_commands.name)
        self.commands = topic(topics.wallet_commands.name)
        self.events = topic(topics.wallet_events.name)
        self.rejected = topic(topics.cdr_rejected.name)
        self.actions = topic(topics.network_actions.name)

        app.agent(self.raw, name="enrich")(self.enrich)
        app.agent(self.inputs, name="rate")(self.rate)
        app.agent(self.events, name="follow")(self.follow)
        if settings.tick_interval > 0:
            app.timer(settings.tick_interval, name="clock")(self.clock)
        app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]
        app.on_rebalance_complete.connect(self._on_rebalanced)  # type: ignore[arg-type]
        self.health = Health()
        app.timer(HEARTBEAT_EVERY, name="heartbeat")(self.heartbeat)
        if settings.metrics_port:
            self.metrics.serve(settings.metrics_port, self.health)

    # -- helpers ---------------------------------------------------------------------------

    def _batches(self, stream: faust.StreamT) -> AsyncIterator[list[faust.EventT]]:
        # take_events exists on faust-streaming's Stream but not on its StreamT protocol.
        taker: Any = stream
        return taker.take_events(self.settings.batch_size, within=self.settings.batch_within)

    async def _send(
        self, topic: faust.TopicT, key: bytes | None, value: bytes, **kw: Any
    ) -> Awaitable[Any]:
        return await topic.send(key=key, value=value, force=True, **kw)

    async def _reject(self, rejection: Rejected, key: bytes | None) -> Awaitable[Any]:
        self.metrics.rejected.labels(rejection.reason).inc()
        return await self._send(self.rejected, key, encode(rejection))

    # -- enrich ----------------------------------------------------------------------------

    async def enrich(self, stream: faust.StreamT) -> AsyncIterator[None]:
        raw_topic = self.names.cdr_raw.name
        async for batch in self._batches(stream):
            pending: list[Awaitable[Any]] = []
            for event in batch:
                msg = event.message
                raw = msg.value or b""
                self.metrics.received.inc()
                origin = f"{raw_topic}/{msg.partition}@{msg.offset}"
                cdr = decode_cdr(raw, origin)
                if isinstance(cdr, Rejected):
                    pending.append(await self._reject(cdr, msg.key))
                    continue
                wallet = route_cdr(self.catalog, {}, cdr, origin, raw)
                if isinstance(wallet, Rejected):
                    pending.append(await self._reject(wallet, msg.key))
                    continue
                headers = [
                    (ORIGIN, f"{msg.partition}:{msg.offset}".encode()),
                    (INGESTED, repr(msg.timestamp).encode()),
                ]
                pending.append(
                    await self._send(self.by_wallet, wallet.encode(), raw, headers=headers)
                )
            await asyncio.gather(*pending)
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

            def load() -> int:
                snapshot = None
                if raw:
                    _, offset, decided, wallets = decode_snapshot(raw)
                    snapshot = PartitionState(wallets, decided, offset)
                after = snapshot.events_offset if snapshot else -1
                decisions = read_decisions(bootstrap, topic, partition, after)
                return self.processor.recover(partition, decisions, snapshot)

            async def run() -> None:
                self.metrics.recovering.inc()
                try:
                    count = await loop.run_in_executor(None, load)
                finally:
                    self.metrics.recovering.dec()
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
        raw_topic = self.names.cdr_raw.name
        metrics = self.metrics
        async for batch in self._batches(stream):
            pending: list[Awaitable[Any]] = []
            timings: list[tuple[float, float]] = []  # (ingested, CDR start) per rated input
            written: list[tuple[int, Any]] = []  # (partition, send future) per decision
            latest: dict[int, faust.EventT] = {}  # the last input event of each partition
            positions: dict[Any, int] = {}
            for event in batch:
                msg = event.message
                partition, value = msg.partition, msg.value or b""
                positions[msg.tp] = msg.offset
                latest[partition] = event
                if not self.processor.recovered(partition):
                    await self._recover(partition)
                if msg.topic == commands_topic:
                    metrics.commands.inc()
                    origin = (commands_topic, partition, msg.offset)
                    try:
                        command = decode_command(value)
                    except msgspec.MsgspecError as exc:
                        where = f"{commands_topic}/{partition}@{msg.offset}"
                        bad = Rejected("malformed_command", str(exc), where, **raw_fields(value))
                        pending.append(await self._reject(bad, msg.key))
                        continue
                    item: Cdr | Command = command
                    wallet = command.wallet_id
                else:
                    header = _header(msg.headers, ORIGIN) or b""
                    raw_partition, _, raw_offset = header.decode().partition(":")
                    origin = (raw_topic, int(raw_partition or -1), int(raw_offset or msg.offset))
                    cdr = decode_cdr(value)
                    if isinstance(cdr, Rejected):  # cannot happen after enrich; keep it visible
                        pending.append(await self._reject(cdr, msg.key))
                        continue
                    item, wallet = cdr, (msg.key or b"").decode()
                    ingested = float(_header(msg.headers, INGESTED) or msg.timestamp)
                    timings.append((ingested, cdr.started_at.timestamp()))
                if self.processor.already_decided(partition, origin):
                    metrics.skipped.inc()
                    continue
                decision = self.processor.decide(partition, wallet, item, origin)
                if decision is not None:
                    self._count(decision)
                    sent = await self._send(
                        self.events, wallet.encode(), encode(decision), partition=partition
                    )
                    pending.append(sent)
                    written.append((partition, sent))
            await asyncio.gather(*pending)
            self._durable(written, latest)
            now = time.time()
            for ingested, started in timings:
                metrics.ingest_latency.observe(max(0.0, now - ingested))
                metrics.cdr_age.observe(max(0.0, now - started))
            self._observe_lag(positions)
            metrics.suspended.set(self.processor.suspended())
            yield None

    def _durable(self, written: list[tuple[int, Any]], latest: dict[int, faust.EventT]) -> None:
        """Note how far each partition's decisions reached ``wallet.events``, and snapshot a
        partition that is due (everything snapshotted is already durable)."""
        touched: dict[int, int] = {}
        for partition, future in written:
            offset = future.result().offset
            touched[partition] = max(offset, touched.get(partition, -1))
        every = self.settings.snapshot_every
        now = time.monotonic()
        for partition, offset in touched.items():
            part = self.processor.partitions.get(partition)
            if part is None:
                continue
            part.events_offset = max(part.events_offset, offset)
            last = self.snapshot_at.setdefault(partition, now)
            if every > 0 and now - last >= every:
                self.snapshot(partition, latest[partition])

    def snapshot(self, partition: int, event: faust.EventT) -> None:
        part = self.processor.partitions[partition]
        raw = encode_snapshot(partition, part.events_offset, part.decided, part.wallets)
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

    def _count(self, decision: Decision) -> None:
        metrics = self.metrics
        for e in decision.events:
            metrics.events.labels(type(e).__name__).inc()
            if isinstance(e, UsageRated):
                metrics.rated.inc()
            elif isinstance(e, CdrRejected):
                metrics.rejected.labels(e.reason).inc()
        metrics.decisions.inc()

    def _observe_lag(self, positions: dict[Any, int]) -> None:
        consumer: Any = self.app.consumer
        for tp, offset in positions.items():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                lag = max(0, highwater - offset - 1)
                self.metrics.lag.labels(tp.topic, str(tp.partition)).set(lag)

    async def heartbeat(self) -> None:
        """Liveness and readiness for /healthz and /readyz, from the event loop itself."""
        self.health.beat()
        assigned = self._wallet_partitions(set(self.app.consumer.assignment()))
        busy = self.app.rebalancing or self.app.in_recovery
        self.health.ready(worker_readiness(busy, assigned, self.processor.recovered))

    def _wallet_partitions(self, tps: set[Any]) -> set[int]:
        inputs = {self.names.cdr_by_wallet.name, self.names.wallet_commands.name}
        return {tp.partition for tp in tps if tp.topic in inputs}

    async def _on_rebalanced(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        """Start rebuilding every assigned wallet partition now (tables are restored by
        then), not at its first input, so the worker is ready before traffic arrives."""
        assigned: set[Any] = set(self.app.consumer.assignment())
        for partition in self._wallet_partitions(assigned):
            if not self.processor.recovered(partition):
                self._recovery(partition)

    async def _on_revoked(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        """Forget partitions another worker may now change; recover them if they return."""
        revoked: set[Any] = args[0] if args else kwargs.get("revoked", set())
        partitions = self._wallet_partitions(revoked)
        self.processor.forget(partitions)
        for p in partitions:
            self.recovering.pop(p, None)
        self.metrics.partitions.set(len(self.processor.partitions))
        for tp in revoked:  # their lag is now the new owner's to report
            self.metrics.lag.remove(tp.topic, str(tp.partition))

    # -- follow ----------------------------------------------------------------------------

    async def follow(self, stream: faust.StreamT) -> AsyncIterator[None]:
        async for batch in self._batches(stream):
            pending: list[Awaitable[Any]] = []
            for event in batch:
                decision = decode_decision(event.message.value or b"")
                key = decision.wallet_id.encode()
                for e in decision.events:
                    if isinstance(e, BarSims | UnbarSims):
                        pending.append(await self._send(self.actions, key, encode(e)))
                for charge in routed_charges(decision.events):
                    pending.append(
                        await self._send(self.commands, charge.wallet_id.encode(), encode(charge))
                    )
            await asyncio.gather(*pending)
            yield None

    # -- clock -----------------------------------------------------------------------------

    async def clock(self) -> None:
        now = datetime.now(UTC).replace(microsecond=0)
        for wallet_id in self.catalog.wallets:
            tick = Tick(
                command_id=f"tick:{wallet_id}:{now.isoformat()}", wallet_id=wallet_id, at=now
            )
            await self._send(self.commands, wallet_id.encode(), encode(tick))


def build(settings: WorkerSettings, catalog: Catalog, topics: Topics) -> tuple[faust.App, Topology]:
    app = create_app(settings)
    return app, Topology(app, settings, catalog, topics)
