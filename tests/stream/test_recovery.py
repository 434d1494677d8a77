"""Reading partitions back waits out a leader election instead of failing the recovery."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from engine.stream.recovery import (
    READ_AHEAD_BACKOFF_MS,
    READ_AHEAD_KB,
    reader,
    reader_config,
    watermarks,
)


class ElectingLeader:
    """Answers ``get_watermark_offsets`` as a broker does while a partition has no leader
    yet (``NOT_LEADER_FOR_PARTITION``, retriable), then with the watermarks."""

    def __init__(self, refusals: int, error: int = KafkaError.NOT_LEADER_FOR_PARTITION) -> None:
        self.refusals = refusals
        self.error = error
        self.asked = 0

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        self.asked += 1
        if self.asked <= self.refusals:
            raise KafkaException(KafkaError(self.error, "no leader"))
        return 3, 17


def test_watermarks_are_asked_again_while_the_leader_is_elected() -> None:
    consumer = ElectingLeader(refusals=2)
    assert watermarks(consumer, TopicPartition("t", 0)) == (3, 17)
    assert consumer.asked == 3


class Denying:
    def __init__(self) -> None:
        self.asked = 0

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        self.asked += 1
        raise KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "denied"))


def test_a_permanent_error_is_raised_at_once() -> None:
    consumer = Denying()
    with pytest.raises(KafkaException):
        watermarks(consumer, TopicPartition("t", 0))
    assert consumer.asked == 1


def test_a_reader_fetches_little_ahead_and_refills_at_once() -> None:
    # A start-up runs a reader per wallet partition at once, and the directory's: each
    # holds at most READ_AHEAD_KB fetched ahead (librdkafka's default is 64 MiB), and
    # fetches again as soon as it is under it (the default waits a second).
    config = reader_config("localhost:9092", "rating-engine-recovery")
    assert config["queued.max.messages.kbytes"] == READ_AHEAD_KB <= 16 * 1024
    assert config["fetch.queue.backoff.ms"] == READ_AHEAD_BACKOFF_MS < 100
    assert config["isolation.level"] == "read_committed"
    assert config["enable.auto.commit"] is False
    reader("localhost:9092").close()  # librdkafka accepts the settings
