"""Every place the engine reaches into Faust's private API, in one module, for one version range.

Faust (faust-streaming) gives no public hook for what the worker needs here, so these
classes override or read its internals:

- `RawSchema`: records reach the agents as the bytes Kafka holds, without the serializer
  registry's lookups per record (``Schema.compile`` and ``App.create_event``).
- `CommittedConsumerThread`: the aiokafka consumer reads ``read_committed``
  (``_create_worker_consumer``, ``AIOKafkaConsumer._isolation_level``).
- `ExactConsumer`: the offset committed for a partition is the engine's (positions.py), not
  one worked out from acknowledged events (``_new_offset``, ``_acked``, ``_acked_index``),
  and fetched records are handed to the streams in a plain loop (``_drain_messages``), the
  records of a bundled topic a `Bundle` at a time.
- `RatingApp`: the app builds that consumer (``_new_transport``) and runs without the
  ``Monitor`` sensor (``on_init_dependencies``, ``sensors``, ``monitor``).
- `QuietWorker`: the root logger is left at the worker's level, not DEBUG.
- `consumer_report`: what the SIGUSR1 report reads of the consumer (diagnostics.py).

Each is pinned by tests/stream/test_faust_compat.py, which fails when an override stops
doing its job. They were written against, and are tested with, the versions in
`SUPPORTED`; importing this module with any other installed version fails at once
(versions.py), before a worker could run with an override that silently does nothing. It
imports aiokafka_compat.py, which does the same for the aiokafka client under Faust's
consumer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from importlib.metadata import version
from types import MappingProxyType
from typing import Any

import faust
from faust.transport.drivers import aiokafka as kafka_driver
from faust.types import TP, AppT, Message
from faust.types.tuples import ConsumerMessage

from .aiokafka_compat import FollowingRecords
from .positions import Positions
from .versions import check_version

log = logging.getLogger("rating-engine")

SUPPORTED = ((0, 15, 3), (0, 15, 4))
"""faust-streaming versions the overrides hold for: from the first, up to (excluding) the
second. pyproject.toml pins 0.15.3, the locked version: the one the overrides were read and
tested against. Widening it means re-reading every override
against the new version's source and running test_faust_compat.py."""

check_version(version("faust-streaming"), "faust-streaming", SUPPORTED, __name__)


class RawSchema(faust.Schema):
    """Records as bytes: the event gets the record's key and value as they are, without
    the serializer registry's lookups per record (the engine's codec reads the bytes)."""

    def __init__(self) -> None:
        super().__init__(key_serializer="raw", value_serializer="raw")

    def compile(self, app: AppT, **kwargs: Any) -> Any:
        create_event = app.create_event

        async def decode(message: Message, *, propagate: bool = False) -> Any:
            return create_event(message.key, message.value, message.headers, message)

        return decode


class CommittedConsumerThread(kafka_driver.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer, reading ``read_committed``: a record a fenced worker sent
    in a transaction (a split-billing charge on ``wallet.commands``) is aborted and must not
    be decided (fencing.py). Transaction markers leave gaps in the offsets, which the
    records' ``follows`` (`FollowingRecords`) tell `Positions` the fetch passed over."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._isolation_level = "read_committed"
        return consumer


BUNDLE_MAX = 100
"""The most records in one `Bundle`: Faust's cost per message is then about 1% of what
it was per record, and a bundle stays small next to a batch."""


class Bundle(ConsumerMessage):
    """Consecutive records of one partition from one fetch, handed to the streams as one
    message: Faust's work per message (turning a Kafka record into a message, the
    hand-off through the conductor and the stream's queue, the acknowledgement) is done
    once per bundle rather than once per record. Its offset is its last record's.
    `Positions` reads its ``records``: aiokafka's, timestamps in milliseconds."""

    __slots__ = ("records",)

    def __init__(self, tp: TP, records: list[Any], generation_id: int | None) -> None:
        last = records[-1]
        super().__init__(
            tp.topic,
            tp.partition,
            last.offset,
            last.timestamp / 1000,
            last.timestamp_type,
            None,
            None,
            None,
            None,
            0,
            0,
            tp,
            generation_id=generation_id,
        )
        self.records = records


class FollowingMessage(ConsumerMessage):
    """Faust's message for one record, with the record's ``follows`` (`FollowingRecords`)."""

    __slots__ = ("follows",)

    def __init__(self, tp: TP, record: Any, generation_id: int | None) -> None:
        super().__init__(
            record.topic,
            record.partition,
            record.offset,
            record.timestamp / 1000,
            record.timestamp_type,
            record.headers,
            record.key,
            record.value,
            record.checksum,
            record.serialized_key_size,
            record.serialized_value_size,
            tp,
            generation_id=generation_id,
        )
        self.follows: int | None = getattr(record, "follows", None)


class ExactConsumer(kafka_driver.Consumer):
    """Faust's consumer, committing for each partition the offset the engine's `Positions`
    says is durable, instead of one worked out from the events acknowledged."""

    _handed = 0
    """Messages handed to the streams so far."""

    def _new_consumer_thread(self) -> kafka_driver.AIOKafkaConsumerThread:
        return CommittedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def _new_offset(self, tp: TP) -> int | None:
        # Acknowledgements still drive Faust's waiting for streams to finish at a
        # rebalance; for the offset they are not used, so they need not pile up.
        self._acked[tp].clear()
        self._acked_index[tp].clear()
        positions: Positions | None = getattr(self.app, "positions", None)
        return None if positions is None else positions.commit_offset(tp.topic, tp.partition)

    async def _drain_messages(self, fetcher: Any) -> None:
        """Hand each fetched record to the streams, one after the other, or for a topic in
        ``app.bundled`` one `Bundle` after the other.

        Faust's own loop awaits each hand-off through ``wait_first`` (four asyncio tasks per
        record, the largest part of Faust's cost per record), so that a suspended flow can
        interrupt it, and keeps the offsets it handed off to spot gaps. This loop needs
        neither: `Positions` recognises records delivered again and reads back any never
        delivered. A hand-off still waiting on a stream's full queue when a rebalance
        clears that queue is dropped: its records come again from the committed offset, or
        are read back when the next one arrives.
        """
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                await self._drain_fetch()
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise

    async def _drain_fetch(self) -> None:
        """One fetch's records to the streams as Faust's ``getmany`` gives them (only the
        partitions still active, nothing once the flow stops or the generation changes),
        without its work per record for a bundled topic."""
        records, active = await self._wait_next_records(1.0)
        generation = self.app.consumer_generation_id
        if records is None or self.should_stop:
            return
        if not self.flow_active:  # stopped while fetching: back to the committed offsets
            try:
                await self.perform_seek()
            except Exception as exc:  # as Faust's getmany: the next fetch tries again
                log.warning("seeking back to the committed offsets failed: %r", exc)
            return
        bundled: Mapping[str, int] = getattr(self.app, "bundled", {})
        others = {}
        for tp, fetched in records.items():
            if active is not None and tp not in active and tp not in self._buffered_partitions:
                continue
            size = bundled.get(tp.topic)
            if size is None:
                others[tp] = fetched
                continue
            for start in range(0, len(fetched), size):
                if not self._current(generation):
                    return
                await self._hand_off(Bundle(tp, fetched[start : start + size], generation))
        to_message = self._to_message
        for tp, record in self.scheduler.iterate(others):
            if not self._current(generation):
                return
            await self._hand_off(to_message(tp, record))

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        FollowingRecords.forget(revoked)
        await super().on_partitions_revoked(revoked)

    def _to_message(self, tp: TP, record: Any) -> ConsumerMessage:
        return FollowingMessage(tp, record, self.app.consumer_generation_id)

    def _current(self, generation: int | None) -> bool:
        """Whether records fetched in ``generation`` may still be handed to the streams."""
        return bool(self.flow_active) and self.app.consumer_generation_id == generation

    async def _hand_off(self, message: Message) -> None:
        """One message to the streams; every 100th lets them run during a large fetch."""
        if self.suspend_flow.is_set():
            return
        try:
            await self.callback(message)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the fetcher itself is being stopped
        self._handed += 1
        if self._handed % 100 == 0:
            await asyncio.sleep(0)


class ExactTransport(kafka_driver.Transport):
    Consumer = ExactConsumer


class RatingApp(faust.App):
    """A Faust app without the ``Monitor`` sensor, whose consumer commits the engine's
    positions."""

    positions: Positions | None = None
    bundled: Mapping[str, int] = MappingProxyType({})
    """Topic -> the most records of one of its partitions handed to its stream as one
    `Bundle`. The topology sets it for ``cdr.raw`` (agents.py)."""

    def _new_transport(self) -> Any:
        return ExactTransport(self.conf.broker_consumer, self)

    def on_init_dependencies(self) -> Iterable[Any]:
        services = super().on_init_dependencies()
        # The Monitor keeps statistics for Faust's web views (disabled here) and is called
        # several times per record; the worker's metrics are its own (metrics.py).
        self.sensors.remove(self.monitor)
        return services


class QuietWorker(faust.Worker):
    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        # The logging setup leaves the root logger at DEBUG (its handler filters), so every
        # debug call in aiokafka would still build a log record: about a tenth of the CPU.
        logger.setLevel(level or logging.WARNING)
        for handler in logger.handlers:
            handler.setLevel(level or logging.WARNING)


def consumer_report(consumer: Any) -> list[str]:
    """What the consumer holds, paused and still owes acks for, and each assigned
    partition's fetch position against its end: none of it is public."""
    lines = [
        f"paused={tps_text(consumer._paused_partitions)}",
        f"active={tps_text(consumer._active_partitions or set())}",
        f"unacked messages={len(consumer._unacked_messages)}",
    ]
    inner = getattr(getattr(consumer, "_thread", None), "_consumer", None)
    subscription = inner._subscription.subscription if inner is not None else None
    assignment = subscription.assignment if subscription else None
    if assignment is not None:
        for tp in sorted(assignment.tps, key=lambda t: (t.topic, t.partition)):
            state = assignment.state_value(tp)
            lines.append(
                f"{tp.topic}/{tp.partition}: position={state._position} "
                f"paused={state.paused} highwater={state.highwater}"
            )
    return lines


def tps_text(tps: Any) -> str:
    """Topic partitions as ``topic/partition``, sorted, or ``-`` for none."""
    return ", ".join(sorted(f"{tp.topic}/{tp.partition}" for tp in tps)) or "-"
