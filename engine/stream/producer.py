"""The worker's producers: records handed over without ever blocking the event loop.

Every producer here (the CLI publisher's, the worker's and each wallet partition's
transactional one, fencing.py) uses `PRODUCER_CONFIG`; its ``murmur2_random``
partitioner is the hash of the Java client, aiokafka and so Faust: a key lands on the same
partition whoever produced it. confluent-kafka's default (CRC32) would put the same ICCID or
wallet on another partition.

A batch's records wait in an `Outbox`, in order, and are handed to librdkafka by whoever
next waits for delivery, off the event loop (`BatchProducer.durable`,
`PartitionWriter.commit`). Two reasons. librdkafka's local queue is bounded, a ``produce``
into a full queue fails at once with ``BufferError``, and what makes room is the broker
acknowledging records, served by ``poll``, in which an agent must not sit on the event loop
(the heartbeat, the rebalance callbacks and the other agents would stop with it). And a
``produce`` is a few µs of the event loop's one core per record, where an append is a
fraction of one: the hand-over runs in the thread that then waits for delivery, while the
loop goes on with the other agents (docs/performance.md has the figures).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from .exits import stop_before_commit
from .kafka_errors import kafka_text
from .kafka_security import client_config
from .topics import StreamError

PRODUCER_CONFIG: dict[str, Any] = {
    # Exactly-once into the partition log: retries after a lost ack cannot duplicate or
    # reorder records (the broker deduplicates by producer id and sequence number).
    "enable.idempotence": True,
    "acks": "all",
    "partitioner": "murmur2_random",
    # JSON CDRs compress 5-10x; lz4 costs the least CPU per byte for that gain, which is what
    # bounds a single publishing process.
    "compression.type": "lz4",
    # Let batches fill: a few ms of latency buys batches of thousands of records.
    "linger.ms": 20,
    "batch.size": 1_000_000,
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 500_000,
    # A record not acknowledged within a minute fails (and is counted) rather than keeping
    # the command waiting for librdkafka's default of five minutes.
    "message.timeout.ms": 60_000,
    # Broker errors reach the producer's error callback, which reports each kind once.
    "log_level": 0,
}

DRAIN_GRACE = 10.0
"""Seconds beyond ``message.timeout.ms`` to wait for the last delivery reports."""

WORKER_DELIVERY_TIMEOUT_MS = 300_000
"""How long the worker's producers keep a record while the broker is away (librdkafka
retries it meanwhile; the idempotent producer makes the retries harmless). An outage
shorter than this is waited out; a longer one fails the batch and stops the worker
(exit 75) before its inputs are committed."""

ROOM_POLL = 0.05
"""Seconds one ``poll`` waits for deliveries to make room in a full queue (off the loop)."""

Delivered = Callable[[KafkaError | None, Message], None]
Record = tuple[str, bytes | None, bytes, int | None]
"""(topic, key, value, partition or ``None`` to place it by its key)."""


class DeliveryFailed(StreamError):
    """A record the worker produced was refused or timed out: its batch must not be acked."""


def try_produce(producer: Producer, record: Record, on_delivery: Delivered | None) -> bool:
    """Hand ``record`` to ``producer``; ``False`` when its local queue is full. Without
    ``on_delivery`` its delivery is never reported to Python."""
    topic, key, value, partition = record
    try:
        if on_delivery is None:  # -1: placed by its key
            producer.produce(topic, value, key, -1 if partition is None else partition)
        elif partition is None:
            producer.produce(topic, value, key, on_delivery=on_delivery)
        else:
            producer.produce(topic, value, key, partition, on_delivery=on_delivery)
    except BufferError:
        return False
    return True


class Outbox:
    """The records produced since the last hand-over, in the order produced.

    `produce` only appends: it never waits and never touches librdkafka. `hand_over` gives
    them to the producer in that order, so records reach the broker in the order they were
    produced (per partition, which is what Kafka keeps); it blocks until the queue took
    them all, and runs off the event loop, just before the producer's flush, which waits
    for the queue anyway. A batch waits for its output before the next one starts, so this
    holds one batch at most.

    ``report_each``: every record's delivery is reported to ``on_delivery``, as a producer
    outside a transaction needs to learn of each failure. A transactional producer does
    not: a record that fails makes its transaction abortable, so the commit fails
    (fencing.py). Its outbox reports only the last record of each (topic, partition) it
    names, whose offset is the highest the transaction wrote there, and spares a report
    per record: a message object built and a call into Python under the interpreter's
    lock, about a quarter of a commit's CPU per record (docs/performance.md, "A delivery
    report per partition, not per decision").
    """

    def __init__(
        self, producer: Producer, on_delivery: Delivered, report_each: bool = True
    ) -> None:
        self.producer = producer
        self.on_delivery = on_delivery
        self.report_each = report_each
        self.waiting: collections.deque[Record] = collections.deque()

    def produce(self, record: Record) -> None:
        self.waiting.append(record)

    def hand_over(self) -> None:
        """Blocking: serve delivery reports until the queue has taken every waiting record."""
        waiting = self.waiting
        reported = None if self.report_each else last_per_partition(waiting)
        handed = 0
        while waiting:
            on_delivery = self.on_delivery if reported is None or handed in reported else None
            if try_produce(self.producer, waiting[0], on_delivery):
                waiting.popleft()
                handed += 1
            else:
                self.producer.poll(ROOM_POLL)

    def clear(self) -> None:
        self.waiting.clear()


def last_per_partition(records: Iterable[Record]) -> set[int]:
    """The positions in ``records`` of the last one for each (topic, partition) named; a
    record placed by its key names none."""
    last: dict[tuple[str, int], int] = {}
    for at, (topic, _, _, partition) in enumerate(records):
        if partition is not None:
            last[(topic, partition)] = at
    return set(last.values())


class BatchProducer:
    """The worker's producer (confluent-kafka: librdkafka does the protocol work in its own
    threads, off the event loop) with one rule: `durable` returns only once Kafka has
    acknowledged everything produced before it, and raises if anything failed.

    The agents produce a batch's records, await `durable`, and only then let Faust ack the
    batch's inputs, so no input offset is committed before what it produced is durable.
    `produce` never blocks (`Outbox`).
    """

    def __init__(
        self,
        bootstrap: str,
        name: str,
        max_message_bytes: int | None = None,
        on_error: Callable[[KafkaError], None] | None = None,
        delivery_timeout_ms: int = WORKER_DELIVERY_TIMEOUT_MS,
        extra: dict[str, Any] | None = None,
    ) -> None:
        config = {
            **PRODUCER_CONFIG,
            **client_config(bootstrap),
            "client.id": name,
            # librdkafka checks the uncompressed size; the topic's limit (the broker's check)
            # applies to the compressed batch, which for JSON decisions is several times
            # smaller. A decision the broker still refuses fails its batch: never dropped.
            "message.max.bytes": min(4 * (max_message_bytes or 1_000_000), 1_000_000_000),
            # A batch waits for its own acknowledgement, so lingering only adds latency.
            "linger.ms": 2,
            "error_cb": self._on_error,
            "message.timeout.ms": delivery_timeout_ms,
            **(extra or {}),
        }
        self.producer = Producer(config)
        self.name = name
        self.failures: list[str] = []
        self.offsets: dict[tuple[str, int], int] = {}
        """The highest acknowledged offset per (topic, partition)."""
        self.outbox = Outbox(self.producer, self._on_delivery)
        self._fatal: KafkaError | None = None
        self._report = on_error
        self._drain = delivery_timeout_ms / 1000 + DRAIN_GRACE
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"{name}-flush")

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            self._fatal = error
        elif self._report is not None:
            self._report(error)  # the broker unreachable, for instance (outage.py)

    def _on_delivery(self, error: KafkaError | None, msg: Message) -> None:
        if error is not None:
            self.failures.append(f"{msg.topic()}: {error.str()}")
            return
        key = (msg.topic() or "", msg.partition() or 0)
        offset = msg.offset() or 0
        if offset > self.offsets.get(key, -1):
            self.offsets[key] = offset

    def produce(
        self, topic: str, key: bytes | None, value: bytes, partition: int | None = None
    ) -> None:
        self.outbox.produce((topic, key, value, partition))

    def _flush(self) -> int:
        self._hand_over()
        return self.producer.flush(self._drain)

    def _hand_over(self) -> None:
        """Hand the waiting records to librdkafka. One it refuses outright (larger than
        ``message.max.bytes``, say) fails the batch as one the broker refused would: the
        rest are not sent, and `durable` raises, so none of the batch's inputs is
        committed and the partition's next owner rates them again."""
        try:
            self.outbox.hand_over()
        except KafkaException as exc:
            topic = self.outbox.waiting[0][0] if self.outbox.waiting else "?"
            self.failures.append(f"{topic}: {kafka_text(exc)}")
            self.outbox.clear()

    async def durable(self) -> None:
        """Wait (off the event loop) until every record produced so far is acknowledged."""
        loop = asyncio.get_running_loop()
        remaining = await loop.run_in_executor(self._executor, self._flush)
        if self._fatal is not None:
            raise DeliveryFailed(f"{self.name}: the producer stopped: {self._fatal.str()}")
        if remaining or self.failures:
            why = self.failures[:3] or [f"{remaining} records without a delivery report"]
            raise DeliveryFailed(f"{self.name}: delivery failed: {'; '.join(why)}")

    def close(self) -> None:
        self._hand_over()
        self.producer.flush(self._drain)
        self._executor.shutdown(wait=False)


async def wait_durable(producer: BatchProducer) -> None:
    """Wait until the batch's output is acknowledged; if Kafka refused any of it, stop
    the process now (`stop_before_commit`).

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
        stop_before_commit(exc)
