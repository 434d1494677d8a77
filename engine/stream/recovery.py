"""Reading a partition of ``wallet.events`` back: how a worker learns what it decided."""

from __future__ import annotations

from collections.abc import Iterator

from confluent_kafka import Consumer, KafkaError, TopicPartition

from ..codec import Decision, decode_decision
from .topics import StreamError

TIMEOUT = 10.0


def read_decisions(bootstrap: str, topic: str, partition: int) -> Iterator[Decision]:
    """Every decision in one partition, from the first offset to the end as it is now."""
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
        if high <= low:
            return
        consumer.assign([TopicPartition(topic, partition, low)])
        idle = 0
        while True:
            batch = consumer.consume(2000, timeout=TIMEOUT)
            idle = 0 if batch else idle + 1
            if idle >= 3:
                raise StreamError(f"reading {topic}[{partition}]: no answer from {bootstrap}")
            for message in batch:
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        return
                    raise StreamError(f"reading {topic}[{partition}]: {error.str()}")
                yield decode_decision(message.value() or b"")
                if (message.offset() or 0) >= high - 1:
                    return
    finally:
        consumer.close()
