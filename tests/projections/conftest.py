"""A rated run in a SQLite event store, and ClickHouse databases on one embedded chDB.

chDB holds one data directory per process (a second path fails while the first is open),
so the whole session shares one directory (``chdb_path`` in tests/conftest.py) and each test
projects into its own database.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from engine.catalog import load_catalog
from engine.codec import decode_event
from engine.domain import Catalog, Event
from engine.offline.generate import generate_cdrs, generate_commands, write_lines
from engine.offline.run import rate_all
from engine.offline.summary import Summary
from engine.projections.clickhouse import Client, connect
from engine.store.sqlite import SqliteStore

REPO = Path(__file__).resolve().parents[2]
CATALOG = REPO / "examples" / "catalog.yaml"


class Run(msgspec.Struct):
    catalog: Catalog
    summary: Summary
    store_url: str
    events: list[Event]


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog(CATALOG)


@pytest.fixture(scope="session")
def run(tmp_path_factory: pytest.TempPathFactory, catalog: Catalog) -> Run:
    out = tmp_path_factory.mktemp("run")
    cdrs, cmds = out / "cdrs.jsonl", out / "cmds.jsonl"
    write_lines(cdrs, generate_cdrs(catalog, 400, 6000, 5, 91, 0.01))
    write_lines(cmds, generate_commands(catalog, 5, 91))
    url = f"sqlite:///{out / 'events.db'}"
    with SqliteStore(url) as store:
        summary = rate_all(catalog, cdrs, cmds, store=store)
        events = [decode_event(s.payload) for b in store.read_all() for s in b]
    return Run(catalog, summary, url, events)


_names = itertools.count(1)


@pytest.fixture
def clickhouse_url(chdb_path: Path) -> str:
    """A fresh database on the session's chDB directory."""
    return f"chdb://{chdb_path}?database=t{next(_names)}"


@pytest.fixture
def client(clickhouse_url: str) -> Iterator[Client]:
    c = connect(clickhouse_url)
    yield c
    c.close()
