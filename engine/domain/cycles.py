"""Billing cycles: monthly periods in UTC that start on a wallet's anchor day."""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache

DAY = 86400


class Cycle(tuple[str, int, int]):
    """``(id, start, end)``: id is the start date (``"2026-11-01"``), bounds in epoch seconds."""

    __slots__ = ()

    @property
    def id(self) -> str:
        return self[0]

    @property
    def start(self) -> int:
        return self[1]

    @property
    def end(self) -> int:
        return self[2]


def _epoch(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + n
    return index // 12, index % 12 + 1


@lru_cache(maxsize=4096)
def _cycle_of_day(day: int, anchor: int) -> Cycle:
    d = date.fromordinal(date(1970, 1, 1).toordinal() + day)
    year, month = (d.year, d.month) if d.day >= anchor else _add_months(d.year, d.month, -1)
    start = date(year, month, anchor)
    ny, nm = _add_months(year, month, 1)
    return Cycle((start.isoformat(), _epoch(start), _epoch(date(ny, nm, anchor))))


def cycle_of(ts: int, anchor_day: int) -> Cycle:
    """The cycle holding the instant ``ts`` for a wallet whose cycles start on ``anchor_day``."""
    return _cycle_of_day(ts // DAY, anchor_day)


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
