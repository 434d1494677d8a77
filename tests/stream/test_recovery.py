"""Reading partitions back waits out a leader election instead of failing the recovery."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from engine.stream.recovery import watermarks


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
