"""The store is fed one way: decisions (``append_decisions``), from the sink, offline ``rate``
and replay alike."""

from __future__ import annotations

from engine.catalog import load_catalog
from engine.codec import decode_cdr
from engine.domain import Cdr
from engine.offline.generate import generate_cdrs
from engine.offline.pipeline import Pipeline
from engine.store import append_decisions, open_store

from .helpers import CATALOG


def test_a_decisions_events_and_input_are_appended_together_once() -> None:
    catalog = load_catalog(CATALOG)
    pipeline = Pipeline(catalog, record_inputs=True)
    for line in generate_cdrs(catalog, 20, 200, 5, days=3, faults=0.0):
        cdr = decode_cdr(line)
        assert isinstance(cdr, Cdr)
        pipeline.feed(cdr)
    decisions = pipeline.decided
    store = open_store("sqlite:///:memory:", chain_key=None)
    try:
        events = [e for d in decisions for e in d.events]
        assert append_decisions(store, decisions) == len(events)
        assert append_decisions(store, decisions) == 0  # a retried batch adds nothing
        stored = list(store.read_inputs())
        assert [(i.wallet_id, i.key) for i in stored] == [(d.wallet_id, d.input) for d in decisions]
        assert [s.event_id for rows in store.read_all() for s in rows] == [e.id for e in events]
    finally:
        store.close()
