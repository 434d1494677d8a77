"""What the worker's consumer says about the gaps in its offsets, on a real broker: each
record aiokafka fetches carries ``follows`` (aiokafka_compat.FollowingRecords), so `Positions`
reads back only what the consumer never delivered, and passes over a transaction's markers
and aborted records without a read."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from confluent_kafka import Consumer, Producer
from confluent_kafka import TopicPartition as KafkaPartition
from faust.types import TP

from engine.stream.aiokafka_compat import FollowingRecords
from engine.stream.faust_compat import FollowingMessage
from engine.stream.positions import Positions
from engine.stream.recovery import read_inputs

from .harness import positions_over


def _committed_log(bootstrap: str, topic: str) -> tuple[list[int], int]:
    """Plain records, a committed transaction, an aborted one, a committed one, plain
    records: the offsets a ``read_committed`` reader gets, and the log's end (markers
    included), once the last marker is written."""
    plain = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    tx = Producer({"bootstrap.servers": bootstrap, "transactional.id": topic})
    tx.init_transactions(30)

    def send(producer: Producer, count: int) -> None:
        for _ in range(count):
            producer.produce(topic, value=b"v", partition=0)

    send(plain, 3)
    plain.flush(30)
    for commit in (True, False, True):
        tx.begin_transaction()
        send(tx, 2)
        tx.flush(30)
        tx.commit_transaction(30) if commit else tx.abort_transaction(30)
    send(plain, 2)
    plain.flush(30)
    # 3 + 3 × (2 records and a marker) + 2 = 14 offsets; 5 hold no committed record (three
    # markers, two aborted records). The coordinator writes a marker on its own time, and
    # until it does the records after it are not readable committed: wait for both.
    deadline = time.monotonic() + 30
    watermarks = Consumer({"bootstrap.servers": bootstrap, "group.id": "reference"})
    while True:
        end = watermarks.get_watermark_offsets(KafkaPartition(topic, 0), timeout=10)[1]
        offsets = [record.offset for record in read_inputs(bootstrap, topic, 0, 0, end)]
        if (len(offsets), end) == (9, 14) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    watermarks.close()
    assert (len(offsets), end) == (9, 14), (offsets, end)
    return offsets, end


@asynccontextmanager
async def _reading(bootstrap: str, tp: TopicPartition) -> AsyncIterator[AIOKafkaConsumer]:
    """An aiokafka consumer reading as the worker's does (``read_committed``), from the
    start of ``tp``."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, 0)
        yield consumer
    finally:
        await consumer.stop()


async def _fetch(bootstrap: str, topic: str, seek: tuple[int, int] | None = None) -> list[Any]:
    """Every record of partition 0 as the worker's aiokafka consumer fetches it
    (``read_committed``); ``seek=(after, to)`` moves its position to ``to`` once it has
    fetched ``after`` records, as a rebalance's seek does."""
    tp = TopicPartition(topic, 0)
    async with _reading(bootstrap, tp) as consumer:
        records: list[Any] = []
        while True:
            limit = None if seek is None or len(records) >= seek[0] else seek[0] - len(records)
            fetched = await consumer.getmany(tp, timeout_ms=2_000, max_records=limit)
            if not fetched:
                return records
            records.extend(fetched[tp])
            if seek is not None and len(records) == seek[0]:
                consumer.seek(tp, seek[1])


def _decide(
    topic: str, records: list[Any], log: list[int]
) -> tuple[list[int], list[tuple[int, int]], Positions]:
    """What `Positions` decides of ``records``, delivered as the worker's consumer hands
    them over, and the ranges it reads back (from ``log``)."""
    positions, fetched = positions_over(0, log)
    events = [SimpleNamespace(message=FollowingMessage(TP(topic, 0), r, 1)) for r in records]
    batch = asyncio.run(positions.inputs(events))
    return [i.offset for i in batch.inputs], fetched, positions


def test_each_fetched_record_follows_the_offset_its_fetch_had_reached(
    kafka_bootstrap: str, topic: str
) -> None:
    log, _ = _committed_log(kafka_bootstrap, topic)
    records = asyncio.run(_fetch(kafka_bootstrap, topic))
    assert [r.offset for r in records] == log
    follows = [r.follows for r in records]
    # The fetch starts at 0; each record follows the one before it, markers and aborted
    # records in between passed over by the fetch itself.
    assert follows == [0] + [r.offset + 1 for r in records[:-1]]
    assert any(r.offset > r.follows for r in records), "the markers leave gaps"


def test_markers_and_aborted_records_are_passed_over_without_a_read(
    kafka_bootstrap: str, topic: str
) -> None:
    log, _ = _committed_log(kafka_bootstrap, topic)
    records = asyncio.run(_fetch(kafka_bootstrap, topic))
    decided, fetched, positions = _decide(topic, records, log)
    assert decided == log
    assert fetched == [], "nothing is read back"
    # Every offset below the last record that holds none: the two aborted records and the
    # markers written before it (the coordinator writes a marker on its own time, so the
    # last may come after the plain records).
    holes = (log[-1] + 1) - len(log)
    assert positions.passed_over == holes >= 4
    assert positions.read_back == 0


def test_a_record_fetched_and_not_handed_over_is_read_back(
    kafka_bootstrap: str, topic: str
) -> None:
    """As when Faust drops a record it fetched before a rebalance: the next record
    follows the dropped one, which `Positions` never saw."""
    log, _ = _committed_log(kafka_bootstrap, topic)
    records = asyncio.run(_fetch(kafka_bootstrap, topic))
    dropped = records[4]  # the first record after the first committed transaction's marker
    decided, fetched, _ = _decide(topic, [r for r in records if r is not dropped], log)
    assert decided == log
    assert fetched == [(dropped.offset, records[5].offset)]


def test_a_jump_of_the_consumers_position_is_read_back(kafka_bootstrap: str, topic: str) -> None:
    """A seek forward (a committed offset that ran ahead of what was decided) starts the
    next fetch beyond the records never delivered: they are read back."""
    log, end = _committed_log(kafka_bootstrap, topic)
    records = asyncio.run(_fetch(kafka_bootstrap, topic, seek=(2, 9)))
    assert [r.offset for r in records] == [o for o in log if o < 2 or o >= 9]
    assert records[2].follows == 9
    decided, fetched, _ = _decide(topic, records, log)
    assert decided == log
    assert fetched == [(2, records[2].offset)]
    assert end == 14


def test_aiokafkas_fetcher_builds_the_following_records() -> None:
    from aiokafka.consumer import fetcher

    assert fetcher.PartitionRecords is FollowingRecords


def test_a_record_in_a_later_fetch_follows_the_markers_the_fetches_before_passed_over(
    kafka_bootstrap: str, topic: str
) -> None:
    """A transaction's marker written after its records reaches the consumer at the end of
    a fetch, or alone in one: either way the next record, in a fetch of its own, follows
    from before the marker."""

    async def scenario() -> list[Any]:
        tx = Producer({"bootstrap.servers": kafka_bootstrap, "transactional.id": topic})
        tx.init_transactions(30)
        tx.begin_transaction()
        for _ in range(2):
            tx.produce(topic, value=b"v", partition=0)
        tx.commit_transaction(30)
        tp = TopicPartition(topic, 0)
        async with _reading(kafka_bootstrap, tp) as consumer:
            records: list[Any] = []
            while len(records) < 2:
                records.extend((await consumer.getmany(tp, timeout_ms=2_000)).get(tp, []))
            deadline = time.monotonic() + 30
            while await consumer.position(tp) < 3:  # the marker, passed over
                assert not await consumer.getmany(tp, timeout_ms=200)
                assert time.monotonic() < deadline, "the marker never came"
            plain = Producer({"bootstrap.servers": kafka_bootstrap})
            plain.produce(topic, value=b"after", partition=0)
            plain.flush(30)
            while len(records) < 3:
                records.extend((await consumer.getmany(tp, timeout_ms=2_000)).get(tp, []))
            return records

    records = asyncio.run(scenario())
    assert [(r.offset, r.follows) for r in records] == [(0, 0), (1, 1), (3, 2)]
    decided, fetched, positions = _decide(topic, records, [0, 1, 3])
    assert (decided, fetched, positions.passed_over) == ([0, 1, 3], [], 1)
