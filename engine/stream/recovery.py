"""Reading Kafka back directly: a partition of ``wallet.events`` (how a worker learns what
it decided), its snapshot records on ``wallet.snapshots``, a range of input records the
consumer skipped, and a group's committed offset (where a partition's next input is).

Every read is ``read_committed``: what a fenced worker sent (fencing.py) is aborted, and
must be invisible to the partition's next owner."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from ..codec import decode_decision
from ..domain.decision import Decision
from .kafka_errors import kafka_error
from .kafka_security import client_config
from .positions import Record
from .topics import StreamError

TIMEOUT = 30.0
POLL = 0.2
POLL_BATCH = 500
READ_AHEAD_KB = 8192
"""Kilobytes a reader's client fetches ahead of what it has handed over (its queue)."""
READ_AHEAD_BACKOFF_MS = 10
RECOVERY_GROUP = "rating-engine-recovery"
"""Names every reader here (their ACLs); they never join or commit."""


def reader(bootstrap: str, group: str = RECOVERY_GROUP) -> Any:
    return Consumer(reader_config(bootstrap, group))


def reader_config(bootstrap: str, group: str) -> dict[str, Any]:
    """A reader's client settings: it never joins a group, reads only what was committed,
    and fetches little ahead of what it decodes (a start-up runs one per wallet partition
    at once, and the directory's)."""
    return {
        **client_config(bootstrap),
        # Never commits, never joins: only assign() and committed() are used.
        "group.id": group,
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        # Only what an owner of the partition committed (fencing.py).
        "isolation.level": "read_committed",
        "fetch.max.bytes": 52_428_800,
        # What librdkafka fetches ahead of the reader (64 MiB by default, for each of
        # the readers a start-up runs at once): a reader decodes slower than it fetches.
        "queued.max.messages.kbytes": READ_AHEAD_KB,
        # Once under it again, fetch at once (librdkafka waits a second by default).
        "fetch.queue.backoff.ms": READ_AHEAD_BACKOFF_MS,
        "log_level": 0,
    }


ELECTING = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,  # a topic just created, not yet known everywhere
    }
)
"""Answers that pass once the partition's leader is elected (librdkafka does not always
mark them retriable)."""


def watermarks(consumer: Any, tp: TopicPartition) -> tuple[int, int]:
    """A partition's low and high watermarks, asked again while the broker says so (a
    leader being elected right after a topic is created or a broker restarts): a worker
    recovering then waits a moment instead of failing."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            low, high = consumer.get_watermark_offsets(tp, timeout=TIMEOUT)
            return int(low), int(high)
        except KafkaException as exc:
            error = kafka_error(exc)
            passing = error is not None and (error.retriable() or error.code() in ELECTING)
            if not passing or time.monotonic() > deadline:
                raise
            time.sleep(POLL)


def read_partition(
    bootstrap: str,
    topic: str,
    partition: int,
    start: int = 0,
    stop: int | None = None,
    group: str = RECOVERY_GROUP,
) -> Iterator[Message]:
    """The committed records of one partition from offset ``start`` up to ``stop``
    (excluded), or to the end as it is now. ``group`` only names the reader (its ACLs): it
    never joins or commits."""
    consumer = reader(bootstrap, group)
    try:
        low, high = watermarks(consumer, TopicPartition(topic, partition))
        start = max(low, start)
        end = high if stop is None else min(high, stop)
        if end <= start:
            return
        consumer.assign([TopicPartition(topic, partition, start)])
        yield from _range(consumer, topic, partition, start, end, bootstrap)
    finally:
        consumer.close()


def _range(
    consumer: Any, topic: str, partition: int, start: int, end: int, bootstrap: str
) -> Iterator[Message]:
    """The committed records of the partition ``consumer`` is assigned at ``start``, up to
    ``end`` (excluded), or up to the end of the partition if that comes first."""
    idle = 0.0
    following = start
    while True:
        # consume() returns once it holds as many messages as asked for, or at its timeout;
        # so it is asked for no more than the offsets left in the range. Offsets that hold
        # no committed record (a transaction's marker, an aborted record) are made up by
        # the records after the range or by the end-of-partition event: a short range, such
        # as a gap that is only a marker, takes one fetch rather than a whole poll.
        batch = consumer.consume(min(POLL_BATCH, end - following), timeout=POLL)
        idle = 0.0 if batch else idle + POLL
        if idle >= TIMEOUT:
            raise StreamError(f"reading {topic}[{partition}]: no answer from {bootstrap}")
        for message in batch:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    return
                raise StreamError(f"reading {topic}[{partition}]: {error.str()}")
            offset = message.offset() or 0
            if offset >= end:
                return
            following = offset + 1
            yield message
            if following >= end:
                return


def read_decisions(
    bootstrap: str, topic: str, partition: int, after: int = -1
) -> Iterator[tuple[int, Decision]]:
    """``(offset, decision)`` for every decision in one partition after offset ``after``, to
    the end as it is now."""
    for message in read_partition(bootstrap, topic, partition, after + 1):
        yield message.offset() or 0, decode_decision(message.value() or b"")


def read_decision_at(bootstrap: str, topic: str, partition: int, offset: int) -> Decision | None:
    """The committed decision at ``offset`` of one partition, or ``None`` when there is none
    (aborted, a transaction marker, or beyond the end)."""
    for message in read_partition(bootstrap, topic, partition, offset, offset + 1):
        if message.offset() == offset:
            return decode_decision(message.value() or b"")
    return None


SNAPSHOT_WINDOWS = (16, 256, 4096)
"""How far back from the end of a snapshot partition the latest committed snapshot is
looked for, widening (each snapshot and each transaction marker takes an offset, and
aborted ones are skipped); past the last window, the whole partition is read."""


def read_latest(bootstrap: str, topic: str, partition: int) -> bytes | None:
    """The value of the last committed record of one partition (the partition's latest
    snapshot), or ``None`` when it has none. Reads from the end, not the whole compacted
    log: compaction keeps one record per key, but only in closed segments."""
    consumer = reader(bootstrap)
    try:
        low, high = watermarks(consumer, TopicPartition(topic, partition))
    finally:
        consumer.close()
    for window in (*SNAPSHOT_WINDOWS, None):
        start = low if window is None else max(low, high - window)
        latest = None
        for message in read_partition(bootstrap, topic, partition, start, high):
            latest = message.value()
        if latest is not None:
            return latest
        if start <= low:
            return None
    return None


def read_records(
    bootstrap: str, topic: str, partition: int
) -> Iterator[tuple[bytes | None, bytes | None]]:
    """``(key, value)`` of every committed record of one partition, in order, to the end as
    it is now (a partition's snapshot records: compaction keeps the latest of each key)."""
    for message in read_partition(bootstrap, topic, partition):
        yield message.key(), message.value()


def read_inputs(bootstrap: str, topic: str, partition: int, start: int, end: int) -> list[Record]:
    """The records of one partition from ``start`` up to ``end`` (excluded), as inputs."""
    return _inputs(read_partition(bootstrap, topic, partition, start, end))


def _inputs(messages: Iterable[Message]) -> list[Record]:
    return [
        Record(
            message.topic() or "",
            message.partition() or 0,
            message.offset() or 0,
            message.key(),
            message.value() or b"",
            message.timestamp()[1] / 1000,
            None,
        )
        for message in messages
    ]


class InputReader:
    """Reads back the input records a worker's consumer skipped, with one client kept open.

    `Positions` reads back a gap the consumer did not pass over itself: records fetched
    and then dropped around a rebalance, or a jump of the consumer's position. A new client
    per gap took 10 to 40 ms each, on the batch's path; a kept one takes one fetch. A range
    is read only up to the record the consumer delivered after it, which exists; anything
    unexpected (the start no longer in the log, an error) falls back to `read_inputs`, which
    bounds the range by the watermarks on a client of its own.
    """

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        # The enrich and rate agents may both read back, and the worker closes the client
        # as it stops; re-entrant, because a read that fails closes the client under it.
        self._lock = threading.RLock()
        self._consumer: Any = None

    def read(self, topic: str, partition: int, start: int, end: int) -> list[Record]:
        """The records of ``topic``/``partition`` from ``start`` up to ``end`` (excluded),
        where ``end`` is a committed record's offset."""
        if end <= start:
            return []
        with self._lock:
            try:
                return self._read(topic, partition, start, end)
            except (StreamError, KafkaException):
                self.close()
        return read_inputs(self.bootstrap, topic, partition, start, end)

    def _read(self, topic: str, partition: int, start: int, end: int) -> list[Record]:
        if self._consumer is None:
            config = reader_config(self.bootstrap, RECOVERY_GROUP)
            self._consumer = Consumer(
                {
                    **config,
                    # A start the log no longer holds is an error here, not a jump to its end.
                    "auto.offset.reset": "error",
                    # A fetch the broker holds for want of new records (the one sent just
                    # before a read ends) delays the next read's first fetch until it
                    # returns: 500 ms by default, once every few reads.
                    "fetch.wait.max.ms": 5,
                }
            )
        consumer = self._consumer
        consumer.assign([TopicPartition(topic, partition, start)])
        try:
            return _inputs(_range(consumer, topic, partition, start, end, self.bootstrap))
        finally:
            consumer.unassign()  # fetch nothing more until the next gap

    def close(self) -> None:
        """Close the kept client, once any read under way has ended; a later read opens
        a new one."""
        with self._lock:
            if self._consumer is not None:
                consumer, self._consumer = self._consumer, None
                consumer.close()


def committed_offsets(
    bootstrap: str, group: str, partitions: list[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    """Where ``group`` goes on in each ``(topic, partition)``: its committed offset, or where
    the log starts when it has none (the workers read from the earliest offset)."""
    consumer = reader(bootstrap, group)
    try:
        tps = [TopicPartition(topic, partition) for topic, partition in partitions]
        out = {}
        for committed in consumer.committed(tps, timeout=TIMEOUT):
            key = (committed.topic, committed.partition)
            if committed.error is not None:
                raise StreamError(f"committed offset of {key[0]}[{key[1]}]: {committed.error}")
            if committed.offset >= 0:
                out[key] = int(committed.offset)
            else:
                low, _ = watermarks(consumer, committed)
                out[key] = int(low)
        return out
    finally:
        consumer.close()
