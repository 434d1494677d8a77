"""Private topics on the session's broker, and reading a topic back whole: for the tests
that send to Kafka and check what landed where (``publish``, ``command``, ``sim``...)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from engine.stream.admin import apply_topics
from engine.stream.topics import REPO_TOPICS, Topics, load_topics


def fresh_topics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bootstrap: str
) -> Iterator[Topics]:
    """Every topic, created under names unique to this test (RATING_TOPICS points at a copy
    of topics.yaml); deleted afterwards."""
    prefix = f"p{uuid.uuid4().hex[:10]}."
    data = yaml.safe_load(REPO_TOPICS.read_text())
    for item in data["topics"]:
        item["name"] = prefix + item["name"]
    path = tmp_path / "topics.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv("RATING_TOPICS", str(path))
    monkeypatch.delenv("RATING_TOPICS_REPLICATION", raising=False)
    loaded = load_topics(path)
    assert apply_topics(loaded, bootstrap).ok
    yield loaded
    client = AdminClient({"bootstrap.servers": bootstrap})
    for future in client.delete_topics([s.name for s in loaded.all], operation_timeout=30).values():
        future.result(timeout=30)


def _high_watermark(consumer: Consumer, partition: TopicPartition) -> int:
    """The partition's end offset; retried while a just-created topic elects its leaders."""
    for _ in range(50):
        try:
            return consumer.get_watermark_offsets(partition, timeout=10)[1]
        except KafkaException as exc:
            if not exc.args[0].retriable() and exc.args[0].code() not in (
                KafkaError.NOT_LEADER_FOR_PARTITION,
                KafkaError.LEADER_NOT_AVAILABLE,
            ):
                raise
            time.sleep(0.2)
    raise AssertionError(f"no leader for {partition}")


def read_all(bootstrap: str, topic: str, partitions: int) -> list[tuple[bytes | None, bytes, int]]:
    """Every record of ``topic`` as (key, value, partition): each partition read from the
    start up to its high watermark, so no consumer group (and no rebalance wait) is needed."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False}
    )
    try:
        ends = {p: _high_watermark(consumer, TopicPartition(topic, p)) for p in range(partitions)}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        records: list[tuple[bytes | None, bytes, int]] = []
        positions = dict.fromkeys(range(partitions), 0)
        for _ in range(600):
            if all(positions[p] >= ends[p] for p in ends):
                break
            msg = consumer.poll(0.1)
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(error)
            partition, offset = msg.partition(), msg.offset()
            assert partition is not None and offset is not None
            positions[partition] = offset + 1
            value = msg.value()
            assert isinstance(value, bytes)
            records.append((msg.key(), value, partition))
        assert all(positions[p] >= ends[p] for p in ends), "timed out reading back"
        return records
    finally:
        consumer.close()
