"""Smoke tests of the broker the streaming path runs on.

They prove the broker set-up, not engine code: topics can be created, keyed messages land
on stable partitions (the ones Faust's partitioner would pick, so a wallet has one owner
whichever client produced), a consumer group reads everything back, and transactions
work (which needs the transaction.state.log settings of a one-node cluster).
"""

import uuid
from collections import defaultdict
from collections.abc import Iterator

import pytest
from aiokafka.partitioner import DefaultPartitioner
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

PARTITIONS = 3
MESSAGES = 100
KEYS = 10


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def topic(kafka_bootstrap: str) -> Iterator[str]:
    """A fresh 3-partition topic per test, deleted afterwards."""
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    name = _unique("smoke")
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)], operation_timeout=30
    )
    futures[name].result(timeout=30)
    yield name
    admin.delete_topics([name], operation_timeout=30)[name].result(timeout=30)


def _consume(
    bootstrap: str, topic: str, expected: int, *, read_committed: bool = False
) -> list[Message]:
    """Read `expected` messages with a fresh consumer group, then a short while longer to
    make sure nothing more arrives."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": _unique("smoke-group"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed" if read_committed else "read_uncommitted",
        }
    )
    consumer.subscribe([topic])
    received: list[Message] = []
    try:
        idle = 0
        # Up to ~60 s to get the group assignment and the data; then 2 s of silence.
        for _ in range(600):
            msg = consumer.poll(0.1)
            if msg is None:
                idle += 1
                if len(received) >= expected and idle >= 20:
                    break
                continue
            idle = 0
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(error)
            received.append(msg)
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return received


def test_keyed_messages_round_trip_on_stable_partitions(kafka_bootstrap: str, topic: str) -> None:
    producer = Producer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            # Java-compatible hashing: the partitioner Faust (aiokafka) and Java clients
            # use. confluent-kafka's default, consistent_random (CRC32), would put the
            # same key on another partition.
            "partitioner": "murmur2_random",
        }
    )
    delivered: dict[bytes, set[int]] = defaultdict(set)
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(err)
            return
        key, partition = msg.key(), msg.partition()
        assert isinstance(key, bytes)
        assert partition is not None
        delivered[key].add(partition)

    for i in range(MESSAGES):
        producer.produce(
            topic, key=f"wallet-{i % KEYS}".encode(), value=str(i).encode(), on_delivery=on_delivery
        )
    assert producer.flush(30) == 0
    assert errors == []

    received = _consume(kafka_bootstrap, topic, MESSAGES)
    assert len(received) == MESSAGES
    assert sorted(int(m.value() or b"") for m in received) == list(range(MESSAGES))

    consumed: dict[bytes, set[int]] = defaultdict(set)
    for msg in received:
        key, partition = msg.key(), msg.partition()
        assert isinstance(key, bytes)
        assert partition is not None
        consumed[key].add(partition)

    expected = {
        key: DefaultPartitioner()(key, list(range(PARTITIONS)), list(range(PARTITIONS)))
        for key in delivered
    }
    assert len(expected) == KEYS
    # Every key on exactly one partition, the same one the producer reported and the one
    # Faust's partitioner computes.
    assert dict(consumed) == {key: {part} for key, part in expected.items()}
    assert delivered == consumed
    assert len(set(expected.values())) > 1, "10 keys should spread over the 3 partitions"


def test_transactional_producer_commits_and_aborts(kafka_bootstrap: str, topic: str) -> None:
    producer = Producer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "transactional.id": _unique("smoke-tx"),
            "acks": "all",
        }
    )
    producer.init_transactions(30)

    producer.begin_transaction()
    for i in range(5):
        producer.produce(topic, key=f"k{i}".encode(), value=b"committed")
    producer.commit_transaction(30)
    # The broker writes a commit's markers after the commit returns. An abort that reaches
    # it while they are still being written can be answered INVALID_TXN_STATE, which is
    # fatal to librdkafka: wait until a read_committed consumer sees the committed records.
    assert len(_consume(kafka_bootstrap, topic, 5, read_committed=True)) == 5

    producer.begin_transaction()
    producer.produce(topic, key=b"k0", value=b"aborted")
    assert producer.flush(30) == 0  # in the log before the abort, so the abort must hide it
    producer.abort_transaction(30)

    received = _consume(kafka_bootstrap, topic, 5, read_committed=True)
    assert [m.value() for m in received] == [b"committed"] * 5
