"""Billing cycles: monthly periods in UTC that start on a wallet's anchor day."""

from __future__ import annotations

from bisect import bisect_right

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


def _days(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a date of the proleptic Gregorian calendar (H. Hinnant's
    ``days_from_civil``): integer arithmetic, fast enough for every record without a cache."""
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil(days: int) -> tuple[int, int, int]:
    """The (year, month, day) ``days`` after 1970-01-01 (``civil_from_days``)."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + n
    return index // 12, index % 12 + 1


FIRST_YEAR = 1970
LAST_YEAR = 2300
MONTHS: tuple[int, ...] = tuple(
    _days(FIRST_YEAR + i // 12, i % 12 + 1, 1) for i in range((LAST_YEAR - FIRST_YEAR) * 12 + 1)
)
"""Epoch day of the 1st of every month from 1970 to 2300 (past the latest instant a catalog
may accept): a constant calendar, so finding a record's cycle is one binary search."""
MONTH_IDS: tuple[str, ...] = tuple(
    f"{FIRST_YEAR + i // 12:04d}-{i % 12 + 1:02d}-" for i in range(len(MONTHS))
)
DAY_IDS: tuple[str, ...] = tuple(f"{d:02d}" for d in range(32))


def cycle_of(ts: int, anchor_day: int) -> Cycle:
    """The cycle holding the instant ``ts`` for a wallet whose cycles start on ``anchor_day``."""
    day = ts // DAY
    i = bisect_right(MONTHS, day - anchor_day + 1) - 1
    if 0 <= i < len(MONTHS) - 1:
        offset = anchor_day - 1
        return Cycle(
            (
                MONTH_IDS[i] + DAY_IDS[anchor_day],
                (MONTHS[i] + offset) * DAY,
                (MONTHS[i + 1] + offset) * DAY,
            )
        )
    year, month, dom = _civil(day)
    if dom < anchor_day:
        year, month = _add_months(year, month, -1)
    ny, nm = _add_months(year, month, 1)
    start, end = _days(year, month, anchor_day), _days(ny, nm, anchor_day)
    return Cycle((f"{year:04d}-{month:02d}-{anchor_day:02d}", start * DAY, end * DAY))


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
