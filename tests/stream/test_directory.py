"""The shared directory: entries written per SIM and wallet, read whole by every worker (and
followed as it grows), and read once by the CLI."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka import Producer

from engine.catalog import load_catalog
from engine.domain import WalletState
from engine.domain.events import (
    EVENT_TYPES,
    PlanChanged,
    SimAttached,
    SimDetached,
    WalletClosed,
    WalletOpened,
    WalletTerms,
)
from engine.domain.routing import SimRoute
from engine.stream.directory import (
    DIRECTORY_EVENTS,
    Directory,
    Table,
    WalletEntry,
    entries_after,
    entry_key,
    entry_value,
    not_following,
    read_directory,
)
from engine.stream.kafka_security import client_config
from engine.stream.topics import StreamError

from .harness import CATALOG, Stack, wait_until

AT = datetime(2026, 1, 1, tzinfo=UTC)
ROUTE = SimRoute("8901", "acme", ((10, None),), "basic", "pool-1")
MOVED = SimRoute("8901", "globex", ((20, None),), "basic")
OPENED = WalletEntry("shop", "EUR", True)


def test_a_table_keeps_one_route_per_sim_and_wallet_and_forgets_on_a_tombstone() -> None:
    table = Table()
    for entry in (ROUTE, MOVED, OPENED):
        table.apply(entry_key(entry), entry_value(entry))
    assert table.routes == {"8901": {"acme": ROUTE, "globex": MOVED}}
    assert table.wallets == {"shop": OPENED}
    ended = SimRoute("8901", "acme", ((10, 20),), "")
    table.apply(entry_key(ended), entry_value(ended))
    assert table.routes["8901"]["acme"] == ended
    table.apply(entry_key(MOVED), None)
    table.apply(entry_key(OPENED), None)
    assert table.routes == {"8901": {"acme": ended}} and table.wallets == {}
    assert table.changes == 6


def test_routes_of_many_sims_share_one_copy_of_their_wallet_plan_and_stints() -> None:
    table = Table()
    for iccid in ("8901", "8902"):
        route = SimRoute(iccid, "acme", ((10, None),), "basic", "pool-1")
        table.apply(entry_key(route), entry_value(route))
    first, second = table.routes["8901"]["acme"], table.routes["8902"]["acme"]
    assert first == ROUTE and second == SimRoute("8902", "acme", ((10, None),), "basic", "pool-1")
    assert first.wallet is second.wallet and first.plan is second.plan
    assert first.pool is second.pool and first.stints is second.stints
    assert next(iter(table.routes)) is first.iccid  # the key's ICCID, not a second copy


def test_an_unreadable_entry_is_skipped_not_fatal() -> None:
    table = Table()
    table.apply(b'["sim","x"]', b"{}")
    table.apply(b"not json", b"{}")
    table.apply(entry_key(ROUTE), b'{"iccid": 5}')
    assert table.routes == {} and table.changes == 0


def test_entries_after_name_moved_sims_and_a_wallet_opened_by_command() -> None:
    cat = load_catalog(CATALOG)
    terms = WalletTerms("Shop", "EUR")
    state = WalletState("shop", opened=True, terms=terms)
    opened = WalletOpened("e1", "shop", AT, "EUR", 86400, (), terms)
    assert entries_after(state, cat, [opened], 0) == [WalletEntry("shop", "EUR", True)]
    closed = WalletClosed("e2", "shop", AT, "done")
    gone = WalletState("shop", opened=True, terms=terms, closed=True)
    assert entries_after(gone, cat, [closed], 0) == [WalletEntry("shop", "EUR", False)]
    catalog_wallet = WalletState("acme", opened=True)
    assert entries_after(catalog_wallet, cat, [opened], 0) == []  # the catalog's: no entry
    attached = SimAttached("e3", "acme", AT, "8901", "basic")
    assert entries_after(catalog_wallet, cat, [attached], 0) == [
        SimRoute("8901", "acme", (), "", None)  # state not evolved: the SIM is not there
    ]


def _produce(bootstrap: str, topic: str, *entries: SimRoute | WalletEntry) -> None:
    producer = Producer(client_config(bootstrap))
    for entry in entries:
        producer.produce(topic, entry_value(entry), entry_key(entry), partition=0)
    assert producer.flush(30) == 0


def test_a_directory_reads_to_the_end_then_follows(kafka_bootstrap: str, tmp_path: Path) -> None:
    stack = Stack(kafka_bootstrap, tmp_path)
    topic = stack.topics.wallet_directory.name
    empty = Directory(kafka_bootstrap, topic)
    empty.start()  # an empty topic is read at once
    assert empty.routes == {}
    empty.stop()

    _produce(kafka_bootstrap, topic, ROUTE, OPENED)
    directory = Directory(kafka_bootstrap, topic)
    directory.start()
    try:
        assert directory.routes == {"8901": {"acme": ROUTE}}  # read before start returns
        assert directory.wallets == {"shop": OPENED}
        _produce(kafka_bootstrap, topic, MOVED)
        wait_until(lambda: "globex" in directory.routes["8901"], "the directory to follow")
    finally:
        directory.stop()
    once = read_directory(kafka_bootstrap, stack.topics)
    assert once.routes == {"8901": {"acme": ROUTE, "globex": MOVED}}
    assert once.wallets == {"shop": OPENED}


def test_a_stopped_follower_makes_the_worker_not_ready() -> None:
    table = Table()
    assert not_following(table, object()) is None
    table.failure = RuntimeError("broker gone")
    revisions = type("Revisions", (), {"error": ValueError("bad record")})()
    reason = not_following(table, revisions)
    assert reason is not None
    assert "wallet.directory is not followed: broker gone" in reason
    assert "catalog.revisions is not followed: bad record" in reason


def test_a_directory_that_cannot_be_read_stops_the_start(tmp_path: Path) -> None:
    directory = Directory("127.0.0.1:1", "absent.directory")
    with pytest.raises(StreamError, match=r"could not read absent\.directory"):
        directory.start(timeout=3)


def test_the_directory_events_are_exact_types_no_event_type_derives_from_another() -> None:
    # The rater asks whether a decision touches the directory by its events' exact types
    # (a set lookup per decision), which is isinstance only while no event type has a
    # subtype among the others.
    for kind in EVENT_TYPES:
        assert not [other for other in EVENT_TYPES if other is not kind and issubclass(other, kind)]
    assert set(EVENT_TYPES) >= DIRECTORY_EVENTS
    assert {SimAttached, SimDetached, PlanChanged, WalletOpened, WalletClosed} == DIRECTORY_EVENTS
