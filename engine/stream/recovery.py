"""Reading a partition of ``wallet.events`` back: how a worker learns what it decided."""

from __future__ import annotations

from collections.abc import Iterator

from confluent_kafka import Consumer, KafkaError, TopicPartition

from ..codec import Decision, decode_decision
from .topics import StreamError

TIMEOUT = 30.0
POLL = 0.2
POLL_BATCH = 500


def read_decisions(
    bootstrap: str, topic: str, partition: int, after: int = -1
) -> Iterator[tuple[int, Decision]]:
    """``(offset, decision)`` for every decision in one partition after offset ``after``, to
    the end as it is now."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "rating-engine-recovery",  # never commits: only assign() is used
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.max.bytes": 52_428_800,
            "log_level": 0,
        }
    )
    try:
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=TIMEOUT
        )
        start = max(low, after + 1)
        if high <= start:
            return
        consumer.assign([TopicPartition(topic, partition, start)])
        idle = 0.0
        while True:
            # Short polls: consume() waits for a full batch or its timeout, and the end of
            # the partition is known from the watermark, not from a quiet spell.
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
                yield offset, decode_decision(message.value() or b"")
                if offset >= high - 1:
                    return
    finally:
        consumer.close()
