"""What the store tests share: a real rating run, empty stores, and an admin's raw SQL."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from support.postgres import fresh_schema

from engine.catalog import load_catalog
from engine.codec import decode_cdr, decode_command
from engine.domain import Cdr, Command, Event
from engine.offline.generate import generate_cdrs, generate_commands
from engine.offline.pipeline import Pipeline
from engine.store.sqlite import sqlite_path

CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"
BACKENDS = ("sqlite", "postgres")


class Rated:
    """The events and inputs of one rating run of the example catalog, in decision order."""

    def __init__(self, cdrs: int, seed: int) -> None:
        catalog = load_catalog(CATALOG)
        items: list[Cdr | Command] = [
            decode_command(c) for c in generate_commands(catalog, seed, 7)
        ]
        for line in generate_cdrs(catalog, 300, cdrs, seed, days=7, faults=0.0):
            cdr = decode_cdr(line)
            assert isinstance(cdr, Cdr)
            items.append(cdr)
        items.sort(key=lambda i: i.started_at if isinstance(i, Cdr) else i.at)
        pipeline = Pipeline(catalog)
        self.decisions: list[tuple[list[Event], list[tuple[str, Cdr | Command]]]] = []
        for item in items:
            events = pipeline.feed(item)
            if isinstance(events, list) and events:
                wallets = sorted({e.wallet_id for e in events})
                self.decisions.append((events, [(w, item) for w in wallets]))
        self.events = [e for events, _ in self.decisions for e in events]
        self.inputs = [i for _, inputs in self.decisions for i in inputs]


@contextmanager
def fresh_url(backend: str, postgres_url: str) -> Iterator[str]:
    """The URL of an empty store of ``backend``, removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="store-") as directory:
            yield f"sqlite:///{directory}/events.db"
    else:
        with fresh_schema(postgres_url) as url:
            yield url


def tamper(url: str, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
    """Run raw SQL (``?`` placeholders) on the events table as an administrator would:
    the append-only triggers switched off first."""
    if url.startswith("sqlite:"):
        db = sqlite3.connect(sqlite_path(url), isolation_level=None)
        db.execute("DROP TRIGGER events_no_update")
        db.execute("DROP TRIGGER events_no_delete")
        for sql, args in statements:
            db.execute(sql, args)
        db.close()
        return
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        conn.execute("ALTER TABLE events DISABLE TRIGGER events_no_change")
        for sql, args in statements:
            conn.execute(sql.replace("?", "%s"), args)
        conn.execute("ALTER TABLE events ENABLE TRIGGER events_no_change")


def raw_execute(url: str, sql: str) -> None:
    """Run one statement with the triggers in place."""
    if url.startswith("sqlite:"):
        db = sqlite3.connect(sqlite_path(url), isolation_level=None)
        try:
            db.execute(sql)
        finally:
            db.close()
        return
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def query_plan(url: str, sql: str, args: Sequence[Any]) -> str:
    """The database's plan for ``sql`` (``?`` placeholders, as `tamper` takes). PostgreSQL's
    is asked with sequential scans priced out, so that a test's small table still shows the
    index the query can use, and with the statistics brought up to date first: autovacuum
    may have sampled a test's tables halfway through its appends, and statistics that
    count too few rows after a cut price the log's own index under the one the query
    names."""
    if url.startswith("sqlite:"):
        db = sqlite3.connect(sqlite_path(url))
        try:
            return "\n".join(str(row[-1]) for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", args))
        finally:
            db.close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE events, inputs")
        conn.execute("SET enable_seqscan = off")
        plan = conn.execute(f"EXPLAIN {sql.replace('?', '%s')}", args)
        return "\n".join(str(row[0]) for row in plan)
