"""Reading inputs back from a real broker: a range of records (across the offsets a
transaction's marker takes), by a new client or by the worker's kept `InputReader`, and a
group's committed offset, which is where a worker's positions start."""

from __future__ import annotations

import threading
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from engine.stream.recovery import InputReader, committed_offsets, read_inputs


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


def _with_a_marker(
    bootstrap: str, topic: str
) -> tuple[list[tuple[int, bytes | None, bytes | None]], list[int], int]:
    """Records 0-4, a transaction of two (and its marker), records after it: the log as a
    plain consumer reads it, its offsets that hold no record, and its end."""
    plain = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i in range(5):
        plain.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=0)
    plain.flush(30)
    # A transaction leaves a marker after its records: an offset that holds no record.
    tx = Producer({"bootstrap.servers": bootstrap, "transactional.id": topic})
    tx.init_transactions(30)
    tx.begin_transaction()
    tx.produce(topic, key=b"k5", value=b"v5", partition=0)
    tx.produce(topic, key=b"k6", value=b"v6", partition=0)
    tx.commit_transaction(30)
    for i in (7, 8):
        plain.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=0)
    plain.flush(30)

    # The coordinator writes the marker on its own time: wait until the log shows it.
    watermarks = Consumer({"bootstrap.servers": bootstrap, "group.id": "reference"})
    deadline = time.monotonic() + 30
    while True:
        end = watermarks.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
        records = _log(bootstrap, topic)
        holes = sorted(set(range(end)) - {offset for offset, _, _ in records})
        if holes or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    watermarks.close()
    assert holes, "the transaction's marker takes an offset"
    return records, holes, end


def test_a_range_is_read_back_with_its_offsets_keys_and_values(
    kafka_bootstrap: str, topic: str
) -> None:
    records, holes, end = _with_a_marker(kafka_bootstrap, topic)
    inputs = read_inputs(kafka_bootstrap, topic, 0, 2, end)
    assert [(i.offset, i.key, i.value) for i in inputs] == records[2:]
    assert all(i.topic == topic and i.partition == 0 and i.event is None for i in inputs)
    assert all(i.timestamp > 1_700_000_000 for i in inputs)  # seconds, not milliseconds
    assert read_inputs(kafka_bootstrap, topic, 0, 3, 4)[0].offset == 3
    assert read_inputs(kafka_bootstrap, topic, 0, holes[0], holes[0] + 1) == []


def test_the_kept_reader_reads_range_after_range_on_one_client(
    kafka_bootstrap: str, topic: str
) -> None:
    records, holes, end = _with_a_marker(kafka_bootstrap, topic)
    reader = InputReader(kafka_bootstrap)

    def offsets(low: int, high: int) -> list[int]:
        return [offset for offset, _, _ in records if low <= offset < high]

    try:
        # The ranges a worker reads back: up to a record its consumer delivered (or, past
        # the last record, to the end of the partition).
        marker = holes[0]
        assert reader.read(topic, 0, marker, marker + 1) == []
        client = reader._consumer
        assert client is not None
        last = records[-1][0]
        whole = reader.read(topic, 0, 0, last)
        assert [(i.offset, i.key, i.value) for i in whole] == records[:-1]
        assert all(i.topic == topic and i.partition == 0 and i.event is None for i in whole)
        assert all(i.timestamp > 1_700_000_000 for i in whole)
        # Backwards, around the marker, and again: each read starts where it is asked to.
        around = reader.read(topic, 0, marker - 1, marker + 2)
        assert [i.offset for i in around] == offsets(marker - 1, marker + 2)
        assert len(around) == 1 + (marker + 1 < end)
        assert [i.offset for i in reader.read(topic, 0, 1, 3)] == [1, 2]
        assert reader.read(topic, 0, 3, 3) == []
        assert [i.offset for i in reader.read(topic, 0, 0, end)] == offsets(0, end)
        assert reader._consumer is client, "one client for every read"
    finally:
        reader.close()


def test_the_kept_reader_falls_back_when_the_start_is_gone(
    kafka_bootstrap: str, topic: str
) -> None:
    """A start the log no longer holds (retention deleted it) is read from the log's start,
    bounded by the watermarks, as a new client reads it; the kept client is replaced."""
    records, _, _ = _with_a_marker(kafka_bootstrap, topic)
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    gone = admin.delete_records([TopicPartition(topic, 0, 3)], request_timeout=30)
    for future in gone.values():
        future.result(30)
    reader = InputReader(kafka_bootstrap)
    try:
        last = records[-1][0]
        kept = [(i.offset, i.key, i.value) for i in reader.read(topic, 0, 0, last)]
        assert kept == [r for r in records if 3 <= r[0] < last]
        assert reader._consumer is None, "the client that failed is closed"
        assert [i.offset for i in reader.read(topic, 0, 3, 5)] == [3, 4]
        assert reader._consumer is not None
    finally:
        reader.close()


def test_closing_the_kept_reader_waits_for_a_read_under_way(
    kafka_bootstrap: str, topic: str
) -> None:
    """The worker closes the kept client as it stops, while an agent may be reading back:
    the close waits for the read, and a read after it opens a new client."""
    _with_a_marker(kafka_bootstrap, topic)
    reader = InputReader(kafka_bootstrap)
    assert [i.offset for i in reader.read(topic, 0, 1, 3)] == [1, 2]
    first = reader._consumer
    assert first is not None
    with reader._lock:  # as a read under way holds it
        closer = threading.Thread(target=reader.close)
        closer.start()
        closer.join(0.5)
        assert closer.is_alive(), "the close waits for the read"
        assert reader._consumer is first
    closer.join(30)
    assert not closer.is_alive() and reader._consumer is None
    reader.close()  # again: nothing left to close
    try:
        assert [i.offset for i in reader.read(topic, 0, 1, 3)] == [1, 2]
        assert reader._consumer is not None and reader._consumer is not first
    finally:
        reader.close()


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
