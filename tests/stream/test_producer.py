"""The worker's producer never blocks the event loop, even when librdkafka's queue is full."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from engine.stream.producer import BatchProducer, DeliveryFailed
from engine.stream.recovery import read_inputs

from .harness import Stack

SMALL_QUEUE = {"queue.buffering.max.messages": 10}


class Ticker:
    """Counts the event loop's turns while a test waits on something else."""

    def __init__(self) -> None:
        self.ticks = 0
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.01)
            self.ticks += 1

    def __enter__(self) -> Ticker:
        self.task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *_: object) -> None:
        assert self.task is not None
        self.task.cancel()


def test_a_full_queue_keeps_the_records_in_order_without_waiting() -> None:
    async def scenario() -> None:
        # Nothing listens on port 1: nothing is ever delivered, so the queue stays full.
        producer = BatchProducer("127.0.0.1:1", "stuck", delivery_timeout_ms=500, extra=SMALL_QUEUE)
        started = time.monotonic()
        for n in range(30):
            producer.produce("t", None, str(n).encode())
        assert time.monotonic() - started < 0.5  # produce never waited for room
        # On the loop, produce only keeps the records, even those the queue had room for.
        waiting = [value for _, _, value, _ in producer.outbox.waiting]
        assert waiting == [str(n).encode() for n in range(30)]
        with Ticker() as ticker, pytest.raises(DeliveryFailed, match="timed out"):
            await producer.durable()  # waits (off the loop) for room, then for delivery
        # The loop kept running all the while: > 1 s of 10 ms turns.
        assert ticker.ticks > 50
        assert not producer.outbox.waiting

    asyncio.run(scenario())


def test_every_record_that_waited_for_room_is_delivered_in_order(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    stack = Stack(kafka_bootstrap, tmp_path, raw_partitions=1, wallet_partitions=1)
    topic = stack.topics.cdr_raw.name

    async def scenario() -> None:
        producer = BatchProducer(kafka_bootstrap, "full", extra=SMALL_QUEUE)
        for n in range(500):
            producer.produce(topic, b"k", str(n).encode(), 0)
        assert producer.outbox.waiting  # the queue filled
        await producer.durable()
        assert producer.offsets[(topic, 0)] == 499
        producer.close()

    asyncio.run(scenario())
    values = [record.value for record in read_inputs(kafka_bootstrap, topic, 0, 0, 500)]
    assert values == [str(n).encode() for n in range(500)]


def test_a_record_librdkafka_refuses_fails_the_batch_and_sends_nothing_after_it() -> None:
    async def scenario() -> None:
        # librdkafka refuses a record larger than message.max.bytes as it is handed over,
        # before any broker is asked (nothing listens on port 1).
        producer = BatchProducer(
            "127.0.0.1:1", "refused", delivery_timeout_ms=500, extra={"message.max.bytes": 1000}
        )
        producer.produce("t", None, b"small")
        producer.produce("decisions", None, b"x" * 5000)
        producer.produce("t", None, b"after")
        with pytest.raises(DeliveryFailed, match=r"decisions: .*too large"):
            await producer.durable()
        assert not producer.outbox.waiting  # the records after the refused one are dropped
        producer.close()  # and closing does not raise either

    asyncio.run(scenario())
