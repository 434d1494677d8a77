"""The engine's own input positions: whatever the consumer skips, repeats or delivers late,
every offset is decided once, in order, and nothing undecided is ever committed."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.stream.positions import Positions

from .harness import positions_over

TOPIC = "cdr.raw"
LOG = 60  # records 0..59 in partition 0, starting from a committed offset


def _event(offset: int, partition: int = 0) -> Any:
    message = SimpleNamespace(
        topic=TOPIC,
        partition=partition,
        offset=offset,
        key=b"k",
        value=f"v{offset}".encode(),
        timestamp=1.0,
    )
    return SimpleNamespace(message=message)


def _bundle(offsets: list[int]) -> Any:
    """The event of a bundle (faust_compat.Bundle): its records, its offset the last's."""
    records = [_event(o).message for o in offsets]
    message = SimpleNamespace(topic=TOPIC, partition=0, offset=offsets[-1], records=records)
    return SimpleNamespace(message=message)


def _events(offsets: list[int], bundle: int) -> list[Any]:
    if bundle <= 1:
        return [_event(o) for o in offsets]
    return [_bundle(offsets[i : i + bundle]) for i in range(0, len(offsets), bundle)]


def _decide(positions: Positions, batches: list[list[int]], bundle: int = 1) -> list[int]:
    decided: list[int] = []

    async def run() -> None:
        for offsets in batches:
            batch = await positions.inputs(_events(offsets, bundle))
            decided.extend(i.offset for i in batch.inputs)
            assert all(i.value == f"v{i.offset}".encode() for i in batch.inputs)
            positions.made_durable(batch)

    asyncio.run(run())
    return decided


def test_skipped_records_are_read_back_in_their_place() -> None:
    positions, fetched = positions_over(10, range(LOG))
    decided = _decide(positions, [[10, 11, 12], [15, 16], [16, 17]])
    assert decided == [10, 11, 12, 13, 14, 15, 16, 17]
    assert fetched == [(13, 15)]
    assert positions.read_back == 2 and positions.repeated == 1
    assert positions.commit_offset(TOPIC, 0) == 18


def test_records_before_the_committed_offset_are_not_decided_again() -> None:
    positions, fetched = positions_over(20, range(LOG))
    assert _decide(positions, [[18, 19, 20, 21]]) == [20, 21]
    assert fetched == []


def test_a_gap_without_records_is_passed_over() -> None:
    """Offsets that hold no record (a transaction's markers) are not waited for."""
    positions, _ = positions_over(0, range(0, LOG, 2))
    assert _decide(positions, [[0, 2], [6]]) == [0, 2, 4, 6]
    assert positions.commit_offset(TOPIC, 0) == 7


def test_nothing_is_committed_before_a_batch_is_durable() -> None:
    positions, _ = positions_over(5, range(LOG))

    async def run() -> None:
        batch = await positions.inputs([_event(5), _event(6)])
        assert positions.commit_offset(TOPIC, 0) is None
        positions.made_durable(batch)
        assert positions.commit_offset(TOPIC, 0) == 7

    asyncio.run(run())


def test_a_forgotten_partition_starts_again_from_the_group_commit() -> None:
    positions, _ = positions_over(3, range(LOG))
    _decide(positions, [[3, 4, 5]])
    positions.forget([(TOPIC, 0)])
    assert positions.commit_offset(TOPIC, 0) is None
    # The next owner's commit is read again: 3, so 3..5 are offered (and decided) again.
    assert _decide(positions, [[3, 4, 5, 6]]) == [3, 4, 5, 6]


def test_a_bundles_records_are_taken_one_by_one() -> None:
    """A bundle's records repeated, skipped and read back as single records are."""
    positions, fetched = positions_over(10, range(LOG))
    decided = _decide(positions, [[8, 9, 10, 11], [11, 14, 15], [15, 16]], bundle=3)
    assert decided == [10, 11, 12, 13, 14, 15, 16]
    assert fetched == [(12, 14)]
    assert positions.read_back == 2 and positions.repeated == 4
    assert positions.commit_offset(TOPIC, 0) == 17


@settings(max_examples=200, deadline=None)
@given(
    bundle=st.integers(1, 5),
    committed=st.integers(0, 20),
    deliveries=st.lists(
        st.lists(st.integers(0, LOG - 1), min_size=1, max_size=12).map(sorted),
        min_size=1,
        max_size=12,
    ),
)
def test_whatever_is_delivered_each_offset_is_decided_once_in_order(
    bundle: int, committed: int, deliveries: list[list[int]]
) -> None:
    """Deliveries that skip, repeat and rewind, record by record or in bundles: the decided
    offsets are exactly the run from the committed offset to the highest delivered, and the
    commit never passes an offset that was not decided."""
    positions, _ = positions_over(committed, range(LOG))
    decided = _decide(positions, deliveries, bundle)
    highest = max(o for batch in deliveries for o in batch)
    assert decided == list(range(committed, highest + 1))
    expected_commit = highest + 1 if highest >= committed else None
    assert positions.commit_offset(TOPIC, 0) == expected_commit


@st.composite
def _marked_log(draw: st.DrawFn) -> tuple[list[int], int, list[list[tuple[int, int]]], bool]:
    """A log whose offsets hold committed records or nothing (markers, aborted records),
    a committed offset, and deliveries of its records (skipping, repeating, rewinding),
    each with a true ``follows``: any offset from just after the committed record before
    it up to its own. ``tight``: each takes the lowest true ``follows``."""
    log = sorted(draw(st.sets(st.integers(0, LOG - 1), min_size=1, max_size=LOG)))
    committed = draw(st.integers(0, 20))
    tight = draw(st.booleans())
    batches = draw(
        st.lists(
            st.lists(st.sampled_from(log), min_size=1, max_size=12).map(sorted),
            min_size=1,
            max_size=12,
        )
    )
    deliveries = []
    for batch in batches:
        marked = []
        for offset in batch:
            lowest = max((o + 1 for o in log if o < offset), default=0)
            follows = lowest if tight else draw(st.integers(lowest, offset))
            marked.append((offset, follows))
        deliveries.append(marked)
    return log, committed, deliveries, tight


@settings(max_examples=300, deadline=None)
@given(case=_marked_log())
def test_whatever_follows_says_every_committed_record_is_decided_once_in_order(
    case: tuple[list[int], int, list[list[tuple[int, int]]], bool],
) -> None:
    """Records that say, truly, from where the log holds no committed record before them:
    every committed record from the committed offset to the highest delivered is decided,
    once and in order, however the deliveries skip, repeat and rewind; and with the lowest
    true ``follows`` nothing is read back but a range that holds a record."""
    log, committed, deliveries, tight = case
    positions, fetched = positions_over(committed, log)
    decided: list[int] = []

    async def run() -> None:
        for batch in deliveries:
            events = []
            for offset, follows in batch:
                event = _event(offset)
                event.message.follows = follows
                events.append(event)
            taken = await positions.inputs(events)
            decided.extend(i.offset for i in taken.inputs)
            positions.made_durable(taken)

    asyncio.run(run())
    highest = max(o for batch in deliveries for o, _ in batch)
    assert decided == [o for o in log if committed <= o <= highest]
    if tight:
        assert all(set(log) & set(range(begin, end)) for begin, end in fetched), fetched
