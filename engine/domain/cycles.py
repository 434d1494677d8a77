"""Billing cycles: monthly periods in UTC that start on a wallet's anchor day."""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, date, datetime

import msgspec

DAY = 86400


class Cycle(msgspec.Struct, frozen=True, gc=False):
    """One billing cycle: ``id`` is its start date (``"2026-11-01"``), bounds in epoch
    seconds, the end exclusive. A Struct: its fields are read on every rated record."""

    id: str
    start: int
    end: int


def _epoch(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + n
    return index // 12, index % 12 + 1


FIRST_YEAR = 1970
LAST_YEAR = 2300
MONTHS: tuple[int, ...] = tuple(
    _epoch(date(FIRST_YEAR + i // 12, i % 12 + 1, 1)) // DAY
    for i in range((LAST_YEAR - FIRST_YEAR) * 12 + 1)
)
"""Epoch day of the 1st of every month from 1970 to 2300 (past the latest instant a catalog
may accept): a constant calendar, so finding a record's cycle is one binary search."""
MONTH_IDS: tuple[str, ...] = tuple(
    f"{FIRST_YEAR + i // 12:04d}-{i % 12 + 1:02d}-" for i in range(len(MONTHS))
)
DAY_IDS: tuple[str, ...] = tuple(f"{d:02d}" for d in range(29))


def cycle_of(ts: int, anchor_day: int) -> Cycle:
    """The cycle holding the instant ``ts`` for a wallet whose cycles start on ``anchor_day``."""
    day = ts // DAY
    if 1 <= anchor_day <= 28:  # a day every month has (the catalog allows no other)
        i = bisect_right(MONTHS, day - anchor_day + 1) - 1
        if 0 <= i < len(MONTHS) - 1:
            offset = anchor_day - 1
            return Cycle(
                MONTH_IDS[i] + DAY_IDS[anchor_day],
                (MONTHS[i] + offset) * DAY,
                (MONTHS[i + 1] + offset) * DAY,
            )
    # Outside the table: by the calendar (which raises past the year 9999).
    d = date.fromordinal(date(1970, 1, 1).toordinal() + day)
    year, month = (d.year, d.month) if d.day >= anchor_day else _add_months(d.year, d.month, -1)
    start = date(year, month, anchor_day)
    ny, nm = _add_months(year, month, 1)
    return Cycle(start.isoformat(), _epoch(start), _epoch(date(ny, nm, anchor_day)))


def next_cycle(cycle: Cycle, anchor_day: int) -> Cycle:
    return cycle_of(cycle.end, anchor_day)


def cycles_between(first: Cycle, last: Cycle, anchor_day: int) -> list[Cycle]:
    """Every cycle from ``first`` to ``last`` inclusive (empty when ``first`` is later)."""
    out: list[Cycle] = []
    c = first
    while c.start <= last.start:
        out.append(c)
        c = next_cycle(c, anchor_day)
    return out


class Calendar(msgspec.Struct, frozen=True, gc=False):
    """One anchor day's cycles over a span of years, built up front (by the catalog's index):
    a record's cycle is then one binary search, and no ``Cycle`` is built per record."""

    anchor_day: int
    bounds: tuple[int, ...]
    """Each cycle's start, then the last one's end."""
    cycles: tuple[Cycle, ...]

    def cycle_at(self, ts: int) -> Cycle:
        """Exactly ``cycle_of(ts, anchor_day)``."""
        i = bisect_right(self.bounds, ts) - 1
        if 0 <= i < len(self.cycles):
            return self.cycles[i]
        return cycle_of(ts, self.anchor_day)


def calendar(anchor_day: int, first: int, months: int) -> Calendar:
    """The ``months`` cycles of ``anchor_day`` from the one holding the instant ``first``."""
    cycles = [cycle_of(first, anchor_day)]
    while len(cycles) < months:
        cycles.append(next_cycle(cycles[-1], anchor_day))
    bounds = (*(c.start for c in cycles), cycles[-1].end)
    return Calendar(anchor_day, bounds, tuple(cycles))
