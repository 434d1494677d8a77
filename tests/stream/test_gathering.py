"""How the worker's consumer asks the broker for records, on a real broker: while records
flow, each fetch waits for `GATHER` (aiokafka_compat.GatheringFetcher); once a fetch brings
none, the next long-polls with the consumer's own settings, unless other partitions'
records still wait to be consumed."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.protocol.fetch import FetchRequest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from engine.stream.aiokafka_compat import GATHER, GatheringFetcher

LONG_POLL = (1, 1500)
"""What Faust's consumer asks of a fetch: one byte, 1.5 s (aiokafka's default
``fetch_min_bytes`` and Faust's ``fetch_max_wait_ms``)."""


def _produce(bootstrap: str, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(count):
        producer.produce(topic, value=b"record-%d" % i, partition=0)
    producer.flush(30)


async def _asked(bootstrap: str, topic: str, records: int) -> list[tuple[int, int, bool]]:
    """Each fetch request the consumer sent while it read ``records`` records and then
    stood idle a while: (min bytes, max wait, whether its response brought records; False
    for one still unanswered)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=LONG_POLL[1]
    )
    await consumer.start()
    asked: list[tuple[int, int, bool]] = []
    try:
        fetcher = consumer._fetcher
        assert type(fetcher) is GatheringFetcher
        client = consumer._client
        send = client.send

        async def spying(node_id: int, request: Any, *args: Any, **kwargs: Any) -> Any:
            if not isinstance(request, FetchRequest):
                return await send(node_id, request, *args, **kwargs)
            # Noted as it is sent: the last one is still waiting when the consumer stops.
            asked.append((request._min_bytes, request._max_wait_ms, False))
            at = len(asked) - 1
            response = await send(node_id, request, *args, **kwargs)
            brought = any(len(part[-1] or b"") for _, parts in response.topics for part in parts)
            asked[at] = (request._min_bytes, request._max_wait_ms, brought)
            return response

        client.send = spying  # the real send, recorded
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        got = 0
        deadline = time.monotonic() + 30
        while got < records and time.monotonic() < deadline:
            got += len((await consumer.getmany(tp, timeout_ms=1_000)).get(tp, []))
        assert got == records
        await asyncio.sleep(0.5)  # idle: the fetch after the last gathers nothing
    finally:
        await consumer.stop()
    return asked


def test_fetches_gather_while_records_flow_and_long_poll_once_they_stop(
    kafka_bootstrap: str, topic: str
) -> None:
    _produce(kafka_bootstrap, topic, 50)
    asked = asyncio.run(_asked(kafka_bootstrap, topic, 50))
    assert asked[0][:2] == LONG_POLL  # nothing fetched yet: as configured
    for (_, _, brought), (min_bytes, max_wait, _) in itertools.pairwise(asked):
        assert (min_bytes, max_wait) == (GATHER if brought else LONG_POLL)
    assert any(brought for _, _, brought in asked)
    # After the records: one fetch gathers for 10 ms and brings none, then a long poll.
    assert asked[-1][:2] == LONG_POLL and not asked[-2][2]
    assert asked[-2][:2] == GATHER


async def _built_while_waiting(
    bootstrap: str, topic: str, records: int
) -> list[tuple[bool, tuple[int, int]]]:
    """The fetches built while partition 0's records waited to be consumed (the consumer
    took ten, then stood 0.6 s before it took the rest), partition 1 empty: for each,
    whether the fetch before it brought records, and what it asked for (min bytes, max
    wait)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=LONG_POLL[1]
    )
    await consumer.start()
    built: list[tuple[bool, tuple[int, int]]] = []
    try:
        fetcher = consumer._fetcher
        actions = fetcher._get_actions_per_node

        def spying(assignment: Any) -> Any:
            waiting = bool(fetcher._records)
            brought = fetcher._brought
            found = actions(assignment)
            for _, request in found[0] if waiting else ():
                built.append((brought, (request._min_bytes, request._max_wait_ms)))
            return found

        fetcher._get_actions_per_node = spying  # the real one, recorded
        read, empty = TopicPartition(topic, 0), TopicPartition(topic, 1)
        consumer.assign([read, empty])
        consumer.seek(read, 0)
        consumer.seek(empty, 0)
        got = len((await consumer.getmany(read, timeout_ms=10_000, max_records=10)).get(read, []))
        assert got == 10
        await asyncio.sleep(0.6)  # the rest waits: the fetches built meanwhile ask for p1
        deadline = time.monotonic() + 30
        while got < records and time.monotonic() < deadline:
            got += len((await consumer.getmany(read, timeout_ms=1_000)).get(read, []))
        assert got == records
    finally:
        await consumer.stop()
    return built


def test_a_fetch_built_while_records_wait_to_be_consumed_never_long_polls(
    kafka_bootstrap: str,
) -> None:
    # A long poll on the empty partition would hold partition 0 back for 1.5 s once its
    # waiting records are consumed: no fetch can go to the broker while one is out.
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    topic = f"gathering-waiting-{uuid.uuid4().hex[:12]}"
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(30)
    try:
        _produce(kafka_bootstrap, topic, 500)
        built = asyncio.run(_built_while_waiting(kafka_bootstrap, topic, 500))
    finally:
        admin.delete_topics([topic], operation_timeout=30)[topic].result(timeout=30)
    assert all(asked == GATHER for _, asked in built), built
    # Some were built after a fetch that brought nothing, when the consumer's own
    # long poll would otherwise have been asked for.
    assert any(not brought for brought, _ in built), built


def test_aiokafkas_consumer_builds_the_gathering_fetcher() -> None:
    from aiokafka.consumer import consumer

    assert consumer.Fetcher is GatheringFetcher
