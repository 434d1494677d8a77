"""Whatever batches a sink sends (cut anywhere, repeated, retried), the store keeps each event
once, in the order it was first appended, with every chain intact."""

from __future__ import annotations

from contextlib import closing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain import Event
from engine.store import open_store

from .helpers import BACKENDS, Rated, fresh_url


def _small(rated: Rated) -> list[Event]:
    """The decisions of CDRs, top-ups and vouchers: a few hundred events of every kind but
    the clock's thousands of monthly charges."""
    return [e for events, _ in rated.decisions if len(events) <= 20 for e in events]


@st.composite
def sends(draw: st.DrawFn, n: int) -> list[list[int]]:
    """Batches of event indices: consecutive runs, mixed with repeats of earlier events,
    some sent twice in a row (a retry after a lost acknowledgement)."""
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=15)))
    out: list[list[int]] = []
    for start, end in zip([0, *cuts], [*cuts, n], strict=True):
        batch = list(range(start, end))
        batch += draw(st.lists(st.integers(0, max(end - 1, 0)), max_size=6)) if end else []
        batch = draw(st.permutations(batch)) if draw(st.booleans()) else batch
        out.append(batch)
        if draw(st.integers(0, 3)) == 0:
            out.append(batch)
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_batches_with_repeats_keep_unique_events_in_first_append_order(
    backend: str, rated: Rated, postgres_url: str, data: st.DataObject
) -> None:
    events = _small(rated)
    plan = data.draw(sends(len(events)))
    first: dict[str, Event] = {}
    with fresh_url(backend, postgres_url) as url, closing(open_store(url)) as store:
        for batch in plan:
            sent = [events[i] for i in batch]
            new = [e for e in dict.fromkeys(e.id for e in sent) if e not in first]
            assert store.append(sent) == len(new)
            first.update((e.id, e) for e in sent if e.id not in first)
        stored = [s for chunk in store.read_all(batch=97) for s in chunk]
        assert [s.event_id for s in stored] == list(first)
        assert [s.position for s in stored] == list(range(1, len(first) + 1))
        assert store.verify() == []
