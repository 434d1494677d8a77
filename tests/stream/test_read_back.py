"""Reading inputs back from a real broker: a range of records (across the offsets a
transaction's marker takes) and a group's committed offset, which is where a worker's
positions start."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from engine.stream.recovery import committed_offsets, read_inputs


@pytest.fixture
def topic(kafka_bootstrap: str) -> Iterator[str]:
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    name = f"read-back-{uuid.uuid4().hex[:12]}"
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(30)
    yield name
    admin.delete_topics([name], operation_timeout=30)[name].result(timeout=30)


def _log(bootstrap: str, topic: str) -> list[tuple[int, bytes | None, bytes | None]]:
    """Every record of partition 0 as a plain consumer sees it."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "reference", "enable.partition.eof": True}
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    out = []
    while True:
        message = consumer.poll(10)
        assert message is not None
        if message.error():
            break
        out.append((message.offset(), message.key(), message.value()))
    consumer.close()
    return out


def test_a_range_is_read_back_with_its_offsets_keys_and_values(
    kafka_bootstrap: str, topic: str
) -> None:
    plain = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    for i in range(5):
        plain.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=0)
    plain.flush(30)
    # A transaction leaves a marker after its records: an offset that holds no record.
    tx = Producer({"bootstrap.servers": kafka_bootstrap, "transactional.id": topic})
    tx.init_transactions(30)
    tx.begin_transaction()
    tx.produce(topic, key=b"k5", value=b"v5", partition=0)
    tx.produce(topic, key=b"k6", value=b"v6", partition=0)
    tx.commit_transaction(30)
    for i in (7, 8):
        plain.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=0)
    plain.flush(30)

    # The coordinator writes the marker on its own time: wait until the log shows it.
    watermarks = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "reference"})
    deadline = time.monotonic() + 30
    while True:
        end = watermarks.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
        records = _log(kafka_bootstrap, topic)
        holes = sorted(set(range(end)) - {offset for offset, _, _ in records})
        if holes or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    watermarks.close()
    assert holes, "the transaction's marker takes an offset"
    inputs = read_inputs(kafka_bootstrap, topic, 0, 2, end)
    assert [(i.offset, i.key, i.value) for i in inputs] == records[2:]
    assert all(i.topic == topic and i.partition == 0 and i.event is None for i in inputs)
    assert all(i.timestamp > 1_700_000_000 for i in inputs)  # seconds, not milliseconds
    assert read_inputs(kafka_bootstrap, topic, 0, 3, 4)[0].offset == 3
    assert read_inputs(kafka_bootstrap, topic, 0, holes[0], holes[0] + 1) == []


def test_the_committed_offset_or_the_start_of_the_log(kafka_bootstrap: str, topic: str) -> None:
    group = f"group-{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for _ in range(3):
        producer.produce(topic, value=b"x", partition=0)
    producer.flush(30)
    assert committed_offsets(kafka_bootstrap, group, [(topic, 0)]) == {(topic, 0): 0}

    member = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group})
    member.commit(offsets=[TopicPartition(topic, 0, 2)], asynchronous=False)
    member.close()
    assert committed_offsets(kafka_bootstrap, group, [(topic, 0)]) == {(topic, 0): 2}
