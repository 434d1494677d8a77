"""PostgreSQL going away under an open store: a lost connection is ``StoreUnavailable`` (worth
retrying), the next call connects again, and an append retried across the reconnect stores
nothing twice. Mistakes that waiting cannot fix stay ``StoreError``."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from support.postgres import RestartableServer, fresh_schema

from engine.domain import Cdr, Command, Event
from engine.store import StoreError, StoreUnavailable, open_store
from engine.store.postgres import PostgresStore

from .helpers import Rated


@pytest.fixture(scope="module")
def restartable() -> Iterator[RestartableServer]:
    with RestartableServer() as server:
        yield server


def _halves(rated: Rated) -> tuple[int, int]:
    half = len(rated.decisions) // 2
    return half, len(rated.decisions)


def _batch(
    rated: Rated, start: int, end: int
) -> tuple[list[Event], list[tuple[str, Cdr | Command]]]:
    events = [e for evs, _ in rated.decisions[start:end] for e in evs]
    inputs = [i for _, ins in rated.decisions[start:end] for i in ins]
    return events, inputs


@pytest.mark.chaos
def test_session_killed_then_append_retried_stores_each_event_once(
    postgres_url: str, rated: Rated
) -> None:
    half, end = _halves(rated)
    with fresh_schema(postgres_url) as url:
        store = open_store(url)
        first = _batch(rated, 0, half)
        assert store.append(*first) == len(first[0])
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND application_name = '' AND backend_type = 'client backend'"
            ).fetchall()
        assert killed and all(ok for (ok,) in killed)

        everything = _batch(rated, 0, end)
        with pytest.raises(StoreUnavailable) as lost:
            store.append(*everything)
        assert lost.value.reason  # a label for the retry metric
        # The retry connects again and adds only what the first append did not store.
        assert store.append(*everything) == len(everything[0]) - len(first[0])
        assert store.append(*everything) == 0
        ids = [e.event_id for batch in store.read_all() for e in batch]
        assert sorted(ids) == sorted(e.id for e in rated.events)
        assert store.verify() == []
        store.close()


@pytest.mark.chaos
def test_server_restart_under_an_open_store(restartable: RestartableServer, rated: Rated) -> None:
    half, end = _halves(rated)
    store = PostgresStore(restartable.url)
    first = _batch(rated, 0, half)
    store.append(*first)
    restartable.stop("immediate")
    try:
        with pytest.raises(StoreUnavailable):
            store.position()
        with pytest.raises(StoreUnavailable):  # refused while down: still worth retrying
            store.position()
    finally:
        restartable.start()
    everything = _batch(rated, 0, end)
    assert store.append(*everything) == len(everything[0]) - len(first[0])
    assert store.stats().events == len(rated.events)
    assert store.verify() == []
    store.close()


def test_missing_database_is_not_worth_retrying(restartable: RestartableServer) -> None:
    url = restartable.url.rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(StoreError, match="no_such_database") as caught:
        open_store(url)
    assert not isinstance(caught.value, StoreUnavailable)


def test_server_down_at_open_is_worth_retrying(restartable: RestartableServer) -> None:
    restartable.stop("fast")
    try:
        with pytest.raises(StoreUnavailable, match="cannot reach"):
            open_store(restartable.url)
    finally:
        restartable.start()
