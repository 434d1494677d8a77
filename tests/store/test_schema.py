"""The store's schema: the indexes replay reads through, created once and kept."""

from __future__ import annotations

from engine.offline.replay_shard import ADJUSTED
from engine.store import EventStore, open_store, schema
from engine.store.base import payloads_query

from .helpers import query_plan


def test_the_adjustments_index_names_what_the_read_asks_for() -> None:
    """A partial index is used only when the query names its condition as it does: the
    index lists the names ``read_payloads`` asks for, in the same order."""
    _, args = payloads_query("payload", 0, 10, ADJUSTED, "?")
    assert args[1:-1] == schema.ADJUSTMENTS
    assert all(f"'{name}'" in schema.ADJUSTMENTS_INDEX for name in schema.ADJUSTMENTS)


def test_opening_a_store_again_keeps_its_indexes(store_url: str, store: EventStore) -> None:
    """Every open runs the DDL again; the indexes made by the first are still the ones
    the reads use (on PostgreSQL, they are only created when missing)."""
    store.close()
    for _ in range(2):
        open_store(store_url).close()
    sql, args = payloads_query("payload", 0, 10, ADJUSTED, "?")
    assert "events_adjustments" in query_plan(store_url, sql, args)
