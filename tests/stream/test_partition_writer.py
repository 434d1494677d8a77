"""The fence itself, on the real broker: a wallet partition's transactional producer, and
the recovery reads that see only what an owner committed."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Message
from confluent_kafka.admin import AdminClient, NewTopic

from engine.codec import Decision, encode
from engine.stream.fencing import Fenced, PartitionWriter, TransactionFailed, transactional_id
from engine.stream.producer import last_per_partition
from engine.stream.recovery import read_decision_at, read_decisions, read_latest

from .harness import Stack, wait_until


def _decision(offset: int) -> bytes:
    return encode(Decision("initech", f"cdr-{offset}", "cdr.raw", 0, offset, ()))


def _origins(bootstrap: str, topic: str, partition: int) -> list[int]:
    return [d.origin_offset for _, d in read_decisions(bootstrap, topic, partition)]


@pytest.fixture
def stack(kafka_bootstrap: str, tmp_path: Path) -> Stack:
    return Stack(kafka_bootstrap, tmp_path, raw_partitions=1, wallet_partitions=2)


def test_the_transactional_id_is_the_partitions_on_every_worker() -> None:
    assert transactional_id("rating", 3) == "rating-wallet-3"
    assert transactional_id("rating", 3) != transactional_id("rating", 4)


def test_a_transaction_larger_than_the_local_queue_commits_whole(stack: Stack) -> None:
    bootstrap, app = stack.bootstrap, stack.env["RATING_APP_ID"]
    events = stack.topics.wallet_events.name
    writer = PartitionWriter(bootstrap, app, 0, extra={"queue.buffering.max.messages": 10})
    writer.init()
    writer.begin()
    for offset in range(200):
        writer.produce(events, b"initech", _decision(offset), 0)  # never waits for room
    assert writer.outbox.waiting
    writer.commit()
    assert _origins(bootstrap, events, 0) == list(range(200))


def test_a_record_librdkafka_refuses_aborts_its_whole_transaction(stack: Stack) -> None:
    bootstrap, app = stack.bootstrap, stack.env["RATING_APP_ID"]
    events = stack.topics.wallet_events.name
    # A topic limit of 250 bytes: librdkafka refuses a record over 1,000 as it is handed over.
    writer = PartitionWriter(bootstrap, app, 0, max_message_bytes=250)
    writer.init()
    writer.begin()
    writer.produce(events, b"initech", _decision(0), 0)
    writer.produce(events, b"initech", b"x" * 5000, 0)
    writer.produce(events, b"initech", _decision(1), 0)
    with pytest.raises(TransactionFailed, match=r"wallet partition 0: produce: .*too large"):
        writer.commit()
    # Not a fence: the same producer commits the next transaction, without the records left.
    writer.begin()
    writer.produce(events, b"initech", _decision(2), 0)
    writer.commit()
    # The broker writes a commit's markers after the commit returns: wait until they show.
    wait_until(lambda: bool(_origins(bootstrap, events, 0)), "the commit's marker", 30)
    assert _origins(bootstrap, events, 0) == [2]  # nothing of the failed transaction


def test_the_reported_records_are_the_last_of_each_partition_named() -> None:
    records = [
        ("events", b"a", b"0", 0),
        ("commands", b"b", b"1", None),
        ("events", b"a", b"2", 1),
        ("events", b"a", b"3", 0),
        ("snapshots", b"p", b"4", 0),
        ("commands", b"b", b"5", None),
        ("events", b"a", b"6", 1),
    ]
    assert last_per_partition(records) == {3, 4, 6}
    assert last_per_partition([]) == set()


def test_a_transaction_reports_one_delivery_per_partition_and_its_highest_offset(
    stack: Stack,
) -> None:
    bootstrap, app = stack.bootstrap, stack.env["RATING_APP_ID"]
    events, commands = stack.topics.wallet_events.name, stack.topics.wallet_commands.name
    writer = PartitionWriter(bootstrap, app, 0)
    writer.init()
    reports: list[tuple[str, int]] = []
    on_delivery = writer.outbox.on_delivery

    def counted(error: KafkaError | None, msg: Message) -> None:
        reports.append((msg.topic() or "", msg.partition() or 0))
        on_delivery(error, msg)

    writer.outbox.on_delivery = counted
    writer.begin()
    for offset in range(5):
        writer.produce(events, b"initech", _decision(offset), 0)
        writer.produce(events, b"globex", _decision(100 + offset), 1)
        writer.produce(commands, b"acme", b"{}", None)  # placed by its key: never reported
    writer.commit()
    assert sorted(reports) == [(events, 0), (events, 1)]
    wait_until(lambda: len(_origins(bootstrap, events, 1)) == 5, "the commit's marker", 30)
    for partition, last in ((0, 4), (1, 104)):
        found = read_decision_at(bootstrap, events, partition, writer.offsets[(events, partition)])
        assert found is not None and found.origin_offset == last


@pytest.fixture
def small_topic(kafka_bootstrap: str) -> Iterator[str]:
    """A topic whose records may be 2,000 bytes at most, deleted afterwards."""
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    name = f"partition-writer-small-{uuid.uuid4().hex[:12]}"
    config = {"max.message.bytes": "2000"}
    admin.create_topics([NewTopic(name, 1, 1, config=config)])[name].result(30)
    yield name
    admin.delete_topics([name], operation_timeout=30)[name].result(timeout=30)


def test_a_record_the_broker_refuses_fails_the_commit_though_its_delivery_is_not_reported(
    stack: Stack, small_topic: str
) -> None:
    bootstrap, app = stack.bootstrap, stack.env["RATING_APP_ID"]
    events = stack.topics.wallet_events.name
    # librdkafka lets records of up to 8,000 bytes through; the topic takes 2,000 at most.
    writer = PartitionWriter(bootstrap, app, 0, max_message_bytes=2000)
    writer.init()
    writer.begin()
    writer.produce(events, b"initech", _decision(0), 0)
    writer.produce(small_topic, b"acme", os.urandom(5000), None)  # incompressible, unreported
    writer.produce(events, b"initech", _decision(1), 0)
    with pytest.raises(TransactionFailed, match=r"wallet partition 0: commit_transaction: "):
        writer.commit()
    writer.begin()  # the failed transaction was aborted: the producer goes on
    writer.produce(events, b"initech", _decision(2), 0)
    writer.commit()
    wait_until(lambda: bool(_origins(bootstrap, events, 0)), "the commit's marker", 30)
    assert _origins(bootstrap, events, 0) == [2]  # nothing of the failed transaction


@pytest.mark.chaos
def test_a_new_owner_fences_the_old_producer_and_its_open_transaction_never_lands(
    stack: Stack,
) -> None:
    bootstrap, app = stack.bootstrap, stack.env["RATING_APP_ID"]
    events = stack.topics.wallet_events.name
    old = PartitionWriter(bootstrap, app, 0)
    old.init()
    old.begin()
    old.produce(events, b"initech", _decision(0), 0)
    old.commit()  # committed while it owned the partition: kept
    assert old.offsets[(events, 0)] == 0
    old.begin()
    old.produce(events, b"initech", _decision(1), 0)  # open when it loses the partition

    new = PartitionWriter(bootstrap, app, 0)
    new.init()  # the takeover: fences the old producer, aborts its open transaction
    with pytest.raises(Fenced):
        old.commit()  # the paused worker resumes and tries to finish its batch
    assert _origins(bootstrap, events, 0) == [0]  # recovery sees only the committed one

    new.begin()
    new.produce(events, b"initech", _decision(2), 0)
    new.commit()
    with pytest.raises(Fenced):  # nor can it start over
        old.begin()
        old.produce(events, b"initech", _decision(3), 0)
        old.commit()
    assert _origins(bootstrap, events, 0) == [0, 2]
    last = new.offsets[(events, 0)]
    found = read_decision_at(bootstrap, events, 0, last)
    assert found is not None and found.origin_offset == 2
    # The aborted record still takes an offset; reading it back finds no decision there.
    assert read_decision_at(bootstrap, events, 0, 1) is None

    # The other partition's producer is not touched by the takeover of partition 0.
    other = PartitionWriter(bootstrap, app, 1)
    other.init()
    other.begin()
    other.produce(events, b"globex", _decision(5), 1)
    other.commit()
    assert _origins(bootstrap, events, 1) == [5]


@pytest.mark.chaos
def test_recovery_reads_the_latest_committed_snapshot_not_a_fenced_one(stack: Stack) -> None:
    bootstrap, app = stack.bootstrap, stack.env["RATING_APP_ID"]
    snapshots = stack.topics.wallet_snapshots.name
    assert read_latest(bootstrap, snapshots, 1) is None
    old = PartitionWriter(bootstrap, app, 1)
    old.init()
    for n in range(40):  # more than the first window read back from the end
        old.begin()
        old.produce(snapshots, b"partition-1", f"snapshot {n}".encode(), 1)
        old.commit()
    old.begin()
    old.produce(snapshots, b"partition-1", b"stale snapshot", 1)
    PartitionWriter(bootstrap, app, 1).init()
    with pytest.raises(Fenced):
        old.commit()
    assert read_latest(bootstrap, snapshots, 1) == b"snapshot 39"
