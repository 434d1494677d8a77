"""Reading Kafka back directly: a partition of ``wallet.events`` (how a worker learns what
it decided), its snapshot records on ``wallet.snapshots``, a range of input records the
consumer skipped, and a group's committed offset (where a partition's next input is).

Every read is ``read_committed``: what a fenced worker sent (fencing.py) is aborted, and
must be invisible to the partition's next owner."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from ..codec import decode_decision
from ..domain.decision import Decision
from .kafka_security import client_config
from .positions import Record
from .topics import StreamError

TIMEOUT = 30.0
POLL = 0.2
POLL_BATCH = 500
READ_AHEAD_KB = 8192
"""Kilobytes a reader's client fetches ahead of what it has handed over (its queue)."""
READ_AHEAD_BACKOFF_MS = 10


def reader(bootstrap: str, group: str = "rating-engine-recovery") -> Any:
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
            error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
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
    group: str = "rating-engine-recovery",
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
        idle = 0.0
        while True:
            # Short polls: consume() waits for a full batch or its timeout, and the end of
            # the range is known from the watermark, not from a quiet spell.
            batch = consumer.consume(POLL_BATCH, timeout=POLL)
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
                yield message
                if offset >= end - 1:
                    return
    finally:
        consumer.close()


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
    return [
        Record(
            topic,
            partition,
            message.offset() or 0,
            message.key(),
            message.value() or b"",
            message.timestamp()[1] / 1000,
            None,
        )
        for message in read_partition(bootstrap, topic, partition, start, end)
    ]


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
