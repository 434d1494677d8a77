"""Where ClickHouse reads the store itself: the table function for each store, and a direct
rebuild of a PostgreSQL store giving the rows of the Python path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.clickhouse import everything
from support.postgres import fresh_schema

from engine.offline.run import rate_all
from engine.projections.clickhouse import Client, connect
from engine.projections.direct import postgres_source, source
from engine.projections.projector import Projector
from engine.store import open_store
from engine.store.postgres import PostgresStore
from engine.store.sqlite import SqliteStore

from .conftest import Run


def test_a_postgres_url_gives_its_address_database_credentials_and_schema() -> None:
    found = postgres_source(
        "postgresql://rater:p%27w@db.example:6432/rating?options=-csearch_path%3Dt_1"
    )
    assert found is not None
    assert found.table == (
        "postgresql('db.example:6432', 'rating', 'events', 'rater', 'p\\'w', 't_1')"
    )
    assert found.secret == "p'w"
    assert found.payload == "unhex(substring(payload, 3))"


def test_a_postgres_url_without_port_password_or_database_takes_the_defaults() -> None:
    found = postgres_source("postgresql://rater@[::1]")
    assert found is not None
    assert found.table == "postgresql('[::1]:5432', 'rater', 'events', 'rater', '')"
    assert found.secret == ""


def test_a_postgres_server_over_its_unix_socket_is_not_read_directly() -> None:
    assert postgres_source("postgresql:///rating?host=/run/postgresql") is None
    assert postgres_source("postgresql://postgres@/rating?host=%2Ftmp&port=5432") is None


def test_a_sqlite_file_is_read_by_its_absolute_path(client: Client, run: Run) -> None:
    with SqliteStore(run.store_url) as store:
        found = source(store, client)
    path = Path(run.store_url.removeprefix("sqlite:///")).resolve()
    assert found is not None
    assert found.table == f"sqlite('{path}', 'events')"
    assert found.payload == "payload"


def test_a_store_in_memory_is_not_read_directly(client: Client) -> None:
    with SqliteStore("sqlite:///:memory:") as store:
        assert source(store, client) is None


@pytest.fixture
def postgres_store(postgres_url: str, run: Run) -> Iterator[PostgresStore]:
    """The generated run rated again into a PostgreSQL store of its own schema."""
    directory = Path(run.store_url.removeprefix("sqlite:///")).parent
    with fresh_schema(postgres_url) as url:
        store = open_store(url)
        assert isinstance(store, PostgresStore)
        try:
            rate_all(run.catalog, directory / "cdrs.jsonl", directory / "cmds.jsonl", store=store)
            yield store
        finally:
            store.close()


def rebuilt(store: PostgresStore, run: Run, url: str, direct: bool) -> dict[str, Any]:
    client = connect(url)
    try:
        projector = Projector(client, run.catalog, batch=2_500)
        assert projector.rebuild(store, direct=direct) == store.position()
        assert projector.position() == store.position()
        return everything(client)
    finally:
        client.close()


def test_a_direct_rebuild_of_a_postgres_store_gives_the_rows_of_the_python_path(
    postgres_store: PostgresStore, run: Run, chdb_path: Path
) -> None:
    """ClickHouse reads PostgreSQL itself (``postgresql()``, the payload unhexed) and gives,
    table by table, the rows that Python reading the store and inserting JSON gives."""
    client = connect(f"chdb://{chdb_path}?database=pg_direct")
    try:
        assert source(postgres_store, client) is not None
    finally:
        client.close()
    by_clickhouse = rebuilt(postgres_store, run, f"chdb://{chdb_path}?database=pg_direct", True)
    by_python = rebuilt(postgres_store, run, f"chdb://{chdb_path}?database=pg_python", False)
    assert by_clickhouse == by_python
    assert len(by_clickhouse["usage_facts"]) > 0
    with SqliteStore(run.store_url) as sqlite_store:
        assert postgres_store.position() == sqlite_store.position()
