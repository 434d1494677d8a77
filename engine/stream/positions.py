"""Which input offsets an agent has decided, kept by the engine rather than by Faust.

Faust commits a partition's offset from the events its streams acknowledged, and around a
rebalance that bookkeeping can run ahead of what was decided: an event fetched before the
rebalance and delivered after it is skipped *and* acknowledged, a jump in the offsets it
reads is taken for a gap in the log and committed over. Each lets a committed offset pass
a record no agent ever saw, and that record is then lost for good.

So the engine keeps its own positions. For each input partition it knows the next offset to
decide (from the group's committed offset when it first sees the partition). Inputs arrive
through `Positions.inputs`, which drops offsets already decided and, when Faust delivers an
offset beyond the next one, first reads the skipped records back from Kafka itself, unless
the record says the log holds no committed record from before the gap up to it
(``follows``, faust_compat.py): then the consumer's fetches passed over those offsets
themselves, because they hold a transaction's marker or an aborted record, and there is
nothing to read. The offset committed for a partition (`commit_offset`, used by the
worker's consumer in place of Faust's) is the next offset of the last batch whose output
Kafka has acknowledged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, NamedTuple

TopicPartition = tuple[str, int]
"""(topic, partition)."""


class Record(NamedTuple):
    """One input record, in the order it is to be decided (its content is a CDR group or a
    command: the domain's ``Input``)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp: float
    """The record's Kafka timestamp, in seconds."""
    event: Any
    """The Faust event it came in, or ``None`` for a record read back from Kafka."""


Start = Callable[[str, int], Awaitable[int]]
"""The offset a partition starts at: the group's committed offset, or the log's start."""
Fetch = Callable[[str, int, int, int], Awaitable[list[Record]]]
"""The records of ``topic``/``partition`` from ``start`` up to (excluding) ``end``."""


class Batch(NamedTuple):
    inputs: list[Record]
    ends: dict[TopicPartition, int]
    """Per partition, the next offset once this batch is decided."""


class Positions:
    """Per input partition: the next offset to decide, and the next offset whose output
    is durable (what may be committed)."""

    def __init__(self, start: Start, fetch: Fetch) -> None:
        self._start = start
        self._fetch = fetch
        self.next: dict[TopicPartition, int] = {}
        self.durable: dict[TopicPartition, int] = {}
        self.floors: dict[TopicPartition, int] = {}
        """Per partition, the lowest offset still held back (holding.py): not committed past."""
        self.read_back = 0
        """Records read back from Kafka because the consumer skipped them."""
        self.repeated = 0
        """Records delivered again that this worker had already taken."""
        self.passed_over = 0
        """Offsets the consumer's own fetches passed over (markers, aborted records): not
        read back."""

    async def inputs(self, events: Iterable[Any]) -> Batch:
        """The records of a batch of Faust events, each offset once and in order, with any
        record the consumer skipped read back in its place."""
        out: list[Record] = []
        ends: dict[TopicPartition, int] = {}
        following = self.next
        for event in events:
            message = event.message
            tp = (message.topic, message.partition)
            expected = following.get(tp)
            if expected is None:
                expected = following[tp] = await self._start(*tp)
            # A bundle (faust_compat.Bundle) carries consecutive Kafka records of its
            # partition, whose timestamps are in milliseconds.
            bundle = getattr(message, "records", None)
            scale = 1 if bundle is None else 1000
            for msg in (message,) if bundle is None else bundle:
                offset = msg.offset
                if offset < expected:
                    self.repeated += 1
                    continue
                if offset > expected:
                    follows = getattr(msg, "follows", None)
                    if follows is not None and follows <= expected:
                        # The consumer's fetches passed those offsets over themselves
                        # (markers, aborted records): there is nothing to read.
                        self.passed_over += offset - expected
                    else:
                        missing = await self._fetch(tp[0], tp[1], expected, offset)
                        self.read_back += len(missing)
                        out.extend(missing)
                timestamp = msg.timestamp / scale
                out.append(
                    Record(tp[0], tp[1], offset, msg.key, msg.value or b"", timestamp, event)
                )
                expected = following[tp] = ends[tp] = offset + 1
        return Batch(out, ends)

    def made_durable(self, batch: Batch) -> None:
        """The batch's output is acknowledged: its offsets may be committed."""
        self.durable.update(batch.ends)

    def hold(self, tp: TopicPartition, floor: int | None) -> None:
        """The lowest offset of ``tp`` held back (``None``: none is): never committed past."""
        if floor is None:
            self.floors.pop(tp, None)
        else:
            self.floors[tp] = floor

    def commit_offset(self, topic: str, partition: int) -> int | None:
        durable = self.durable.get((topic, partition))
        floor = self.floors.get((topic, partition))
        return durable if floor is None or durable is None else min(durable, floor)

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        """Partitions no longer ours: whoever owns them next starts from the commit."""
        for tp in tps:
            self.next.pop(tp, None)
            self.durable.pop(tp, None)
            self.floors.pop(tp, None)
