"""The rows a batch becomes, whichever backend writes them: each event once, chained after
its stream's head; each input once per wallet."""

from __future__ import annotations

import sqlite3
import tempfile
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.codec import encode
from engine.domain.commands import TopUp
from engine.domain.events import WalletOpened
from engine.store import open_store
from engine.store.chain import EMPTY, GENESIS, Head, link
from engine.store.rows import EventRow, chain_events, first_of_each, input_rows

AT = datetime(2026, 1, 5, tzinfo=UTC)


def opened(event_id: str, wallet: str) -> WalletOpened:
    return WalletOpened(event_id, wallet, AT, "EUR", 86400)


def test_an_event_given_twice_in_a_batch_is_kept_once_in_order() -> None:
    a, b = opened("a", "w1"), opened("b", "w2")
    assert first_of_each([a, b, a, b]) == [a, b]


def test_events_are_positioned_after_the_store_and_chained_per_stream() -> None:
    heads = {"w1": Head(4, "f" * 64)}
    events = [opened("a", "w1"), opened("b", "w2"), opened("c", "w1")]
    rows = chain_events(events, heads, after=10)
    assert all(type(r) is EventRow for r in rows)
    assert [(r.position, r.wallet_id, r.version) for r in rows] == [
        (11, "w1", 5),
        (12, "w2", 1),
        (13, "w1", 6),
    ]
    assert [r.prev_hash for r in rows] == ["f" * 64, GENESIS, rows[0].hash]
    assert rows[0].hash == link("f" * 64, "a", 5, encode(events[0]))
    assert (rows[0].type, rows[0].payload) == ("WalletOpened", encode(events[0]))
    assert heads == {"w1": Head(6, rows[2].hash), "w2": Head(1, rows[1].hash)}


def test_with_a_key_every_hash_is_keyed() -> None:
    key = b"k" * 32
    [row] = chain_events([opened("a", "w1")], {}, after=0, key=key)
    assert (
        row.hash
        == link(EMPTY.hash, "a", 1, row.payload, key)
        != link(EMPTY.hash, "a", 1, row.payload)
    )


def test_an_input_is_one_row_per_wallet_and_key() -> None:
    top = TopUp(command_id="t1", wallet_id="w1", at=AT, amount="5", currency="EUR")
    rows = input_rows([("w1", top), ("w1", top), ("w2", top)])
    assert [(r.wallet_id, r.key, r.at) for r in rows] == [("w1", top.key, AT), ("w2", top.key, AT)]
    assert rows[0].payload == encode(top)


ZONES = [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.datetimes(
                datetime(2020, 1, 1), datetime(2030, 1, 1), timezones=st.sampled_from(ZONES)
            ),
            st.booleans(),
            st.sampled_from(ZONES),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_each_row_of_a_sqlite_append_keeps_its_own_instants_text(
    specs: list[tuple[datetime, bool, timezone]],
) -> None:
    """The ``at`` text is written once per instant object (an input and its event share
    one): equal instants in other zones, or other objects, keep their own text."""
    events, inputs = [], []
    for n, (at, shared, zone) in enumerate(specs):
        events.append(opened(f"e{n}", "w1"))
        events[-1] = msgspec.structs.replace(events[-1], at=at)
        command_at = at if shared else at.astimezone(zone)
        top = TopUp(command_id=f"t{n}", wallet_id="w1", at=command_at, amount="5", currency="EUR")
        inputs.append(("w1", top))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.db"
        store = open_store(f"sqlite:///{path}")
        try:
            store.append(events, inputs)
        finally:
            store.close()
        with closing(sqlite3.connect(path)) as db:
            stored = [r[0] for r in db.execute("SELECT at FROM events ORDER BY position")]
            stored_inputs = [r[0] for r in db.execute("SELECT at FROM inputs ORDER BY seq")]
    assert stored == [e.at.isoformat() for e in events]
    assert stored_inputs == [top.at.isoformat() for _, top in inputs]
