"""Billing cycles: monthly in UTC, from the wallet's anchor day."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain.cycles import calendar, cycle_of, cycles_between, next_cycle

from .builders import ts


def test_cycle_of_anchor_one() -> None:
    c = cycle_of(ts("2026-02-14T12:00:00Z"), 1)
    assert (c.id, c.start, c.end) == (
        "2026-02-01",
        ts("2026-02-01T00:00:00Z"),
        ts("2026-03-01T00:00:00Z"),
    )


def test_cycle_boundaries_are_start_inclusive_end_exclusive() -> None:
    start = ts("2026-03-15T00:00:00Z")
    assert cycle_of(start, 15).id == "2026-03-15"
    assert cycle_of(start - 1, 15).id == "2026-02-15"


def test_cycle_wraps_the_year() -> None:
    c = cycle_of(ts("2026-01-10T00:00:00Z"), 28)
    assert (c.id, c.end) == ("2025-12-28", ts("2026-01-28T00:00:00Z"))
    assert next_cycle(c, 28).id == "2026-01-28"


def test_cycles_between() -> None:
    first = cycle_of(ts("2026-01-05T00:00:00Z"), 1)
    last = cycle_of(ts("2026-04-05T00:00:00Z"), 1)
    assert [c.id for c in cycles_between(first, last, 1)] == [
        "2026-01-01",
        "2026-02-01",
        "2026-03-01",
        "2026-04-01",
    ]
    assert cycles_between(last, first, 1) == []


@settings(max_examples=200, deadline=None)
@given(instant=st.integers(0, 4_000_000_000), anchor=st.integers(1, 28))
def test_every_instant_is_in_exactly_one_cycle(instant: int, anchor: int) -> None:
    c = cycle_of(instant, anchor)
    assert c.start <= instant < c.end
    assert int(c.id[-2:]) == anchor
    n = next_cycle(c, anchor)
    assert n.start == c.end
    assert 28 * 86400 <= c.end - c.start <= 31 * 86400


def test_the_calendar_table_agrees_with_the_calendar() -> None:
    # the first and last cycles the table holds, and the first it does not
    for when, anchor in [(0, 1), (ts("2299-12-31T23:59:59Z"), 28), (ts("2300-01-05T00:00:00Z"), 3)]:
        c = cycle_of(when, anchor)
        start = datetime.fromisoformat(c.id).replace(tzinfo=UTC)
        assert c.start == int(start.timestamp()) <= when < c.end


def test_past_the_year_9999_a_cycle_cannot_be_named() -> None:
    with pytest.raises(ValueError):
        cycle_of(ts("9999-12-31T00:00:00Z"), 1)


SPAN = calendar(15, ts("2026-01-20T00:00:00Z"), 24)


@settings(max_examples=200, deadline=None)
@given(instant=st.integers(0, 4_000_000_000))
def test_a_calendar_gives_the_cycle_of_any_instant_inside_its_span_or_not(instant: int) -> None:
    assert SPAN.cycle_at(instant) == cycle_of(instant, 15)


def test_a_calendar_spans_its_months_from_the_cycle_of_its_first_instant() -> None:
    assert SPAN.cycles[0].id == "2026-01-15"
    assert SPAN.cycles[-1].id == "2027-12-15"
    assert SPAN.bounds[-1] == ts("2028-01-15T00:00:00Z")
    for edge in (SPAN.bounds[0] - 1, SPAN.bounds[0], SPAN.bounds[-1] - 1, SPAN.bounds[-1]):
        assert SPAN.cycle_at(edge) == cycle_of(edge, 15)
