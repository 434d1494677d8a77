"""Held CDRs: routed once a route covers them, released by the fallback rule when their hold
runs out (in time or in offsets), kept in order per SIM, and bounding the commit."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.domain import Cdr
from engine.stream.holding import Holding
from engine.stream.positions import Positions, Record

RAW = "cdr.raw"


def _cdr(iccid: str, n: int) -> Cdr:
    return Cdr(
        cdr_id=f"c{n}",
        iccid=iccid,
        service="data",
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        volume=1,
        mcc="262",
        mnc="01",
    )


def _park(holding: Holding, offset: int, iccid: str, at: float = 100.0) -> None:
    record = Record(RAW, 0, offset, iccid.encode(), b"{}", at, None)
    holding.park(record, _cdr(iccid, offset), 0)


def _offsets(released: list) -> list[tuple[int, bool]]:  # type: ignore[type-arg]
    return [(held.record.offset, routed) for held, routed in released]


def test_a_held_cdr_goes_once_a_route_covers_it() -> None:
    holding = Holding(seconds=10, max_offsets=1000, limit=10)
    _park(holding, 5, "A")
    assert holding.release(101, {0: 5}, lambda iccid, ts: False) == []
    assert holding.floor(0) == 5 and holding.holds(0, "A")
    assert _offsets(holding.release(102, {0: 5}, lambda iccid, ts: True)) == [(5, True)]
    assert holding.floor(0) is None and not holding.holds(0, "A") and holding.count == 0


def test_the_hold_runs_out_in_time_from_the_records_timestamp() -> None:
    holding = Holding(seconds=10, max_offsets=1000, limit=10)
    _park(holding, 1, "A", at=100.0)
    _park(holding, 2, "B", at=105.0)
    assert _offsets(holding.release(110.0, {0: 2}, lambda i, t: False)) == [(1, False)]
    assert holding.floor(0) == 2
    assert _offsets(holding.release(115.0, {0: 2}, lambda i, t: False)) == [(2, False)]


def test_the_hold_runs_out_when_the_partition_moved_on_too_far() -> None:
    holding = Holding(seconds=3600, max_offsets=100, limit=10)
    _park(holding, 1, "A")
    assert holding.release(100.0, {0: 100}, lambda i, t: False) == []
    assert _offsets(holding.release(100.0, {0: 101}, lambda i, t: False)) == [(1, False)]


def test_a_sims_later_cdr_waits_behind_its_earlier_one() -> None:
    holding = Holding(seconds=10, max_offsets=1000, limit=10)
    _park(holding, 1, "A", at=100.0)
    _park(holding, 2, "B", at=100.0)
    _park(holding, 3, "A", at=200.0)  # would be covered, but A's first is still held

    def only_a_late(iccid: str, ts: int) -> bool:
        return iccid == "B"

    assert _offsets(holding.release(101.0, {0: 3}, only_a_late)) == [(2, True)]
    assert holding.holds(0, "A") and holding.floor(0) == 1
    assert _offsets(holding.release(111.0, {0: 3}, lambda i, t: True)) == [(1, True), (3, True)]


def test_room_is_bounded_and_none_when_holding_is_off() -> None:
    holding = Holding(seconds=10, max_offsets=1000, limit=2)
    _park(holding, 1, "A")
    assert holding.room()
    _park(holding, 2, "B")
    assert not holding.room()
    assert not Holding(seconds=0, max_offsets=1000, limit=2).room()


def test_a_revoked_partitions_held_cdrs_are_dropped() -> None:
    holding = Holding(seconds=10, max_offsets=1000, limit=10)
    _park(holding, 1, "A")
    holding.forget([0])
    assert holding.count == 0 and holding.floor(0) is None and not holding.holds(0, "A")


async def _start(topic: str, partition: int) -> int:
    return 0


async def _fetch(topic: str, partition: int, start: int, end: int) -> list[Record]:
    return []


def test_the_commit_never_passes_a_held_offset() -> None:
    positions = Positions(_start, _fetch)
    positions.durable[(RAW, 0)] = 50
    positions.hold((RAW, 0), 7)
    assert positions.commit_offset(RAW, 0) == 7
    positions.hold((RAW, 0), None)
    assert positions.commit_offset(RAW, 0) == 50
    positions.hold((RAW, 0), 9)
    positions.forget([(RAW, 0)])
    assert positions.commit_offset(RAW, 0) is None
