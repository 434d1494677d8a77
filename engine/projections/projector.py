"""The projector: folds events (or the event store) into the ClickHouse tables of ``schema``.

Events go to ClickHouse as the JSON the store keeps, a batch per insert; ClickHouse parses
them and maps them to rows (``schema.MAPPINGS``), so nothing is decoded here. ``apply`` is
idempotent on event ids (the tables are ReplacingMergeTrees read ``FINAL``), so a batch
delivered twice changes no figure. ``project`` continues after the last position applied;
``rebuild`` starts again from nothing and gives the same rows.

A rebuild into embedded chDB lets ClickHouse read the store itself (its ``sqlite()`` or
``postgresql()`` table function, ``direct.py``) and parse the payloads with ``JSONExtract``:
one ``INSERT … SELECT`` per range of positions, the range cut into one slice per thread, each
slice read, parsed and mapped on its own thread, with no Python between the two databases.
Any other pair (a ClickHouse server, which cannot see the store's file or should not hold
its credentials) takes the path above; both give the same rows.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from clickhouse_connect.driver.exceptions import ClickHouseError
from tqdm import tqdm

from ..codec import encode
from ..domain import Catalog, Event
from ..store.base import EventStore, StoredEvent
from . import direct, schema
from .clickhouse import Client, ProjectionError
from .rows import allowance_rows, catalog_rows

STATE_NAME = "events"

DIRECT_RANGE = 1_000_000
"""Positions per ``INSERT … SELECT`` of a direct rebuild."""
DIRECT_STREAMS = max(2, os.cpu_count() or 1)
"""Readers of the store in a direct rebuild, each a slice of the range with its own thread."""
DIRECT_SETTINGS: dict[str, str | int] = {
    # The mappings of one block run side by side, and a block is large.
    "parallel_view_processing": 1,
    # Each slice of the store is read, parsed and mapped on its own thread, to the end.
    "max_threads": DIRECT_STREAMS,
    "max_insert_threads": DIRECT_STREAMS,
    # A rebuild starts from empty tables and the store's event ids are unique, so a block
    # has no duplicate key to merge away at insert time (``FINAL`` still would).
    "optimize_on_insert": 0,
    "max_insert_block_size": 200_000,
    "min_insert_block_size_rows": 200_000,
}

_Block = tuple[int, int, bytes]
"""A batch of stored events: how many, the last position, their JSON one per line."""


class Projector:
    """Writes projections through ``client``; ``catalog`` fills the catalog tables and pool
    allowances (without it those tables stay empty)."""

    def __init__(self, client: Client, catalog: Catalog | None = None, batch: int = 200_000):
        self.client = client
        self.catalog = catalog
        self.batch = batch
        self._buckets: set[tuple[str, str]] = set()

    def create(self) -> None:
        """Create every table, mapping and view that is missing, and load the catalog tables."""
        for ddl in (
            *schema.TABLES.values(),
            schema.INTAKE_TABLE,
            *schema.MAPPINGS.values(),
            *schema.VIEWS.values(),
        ):
            self.client.command(ddl)
        if self.catalog is not None:
            for table, rows in catalog_rows(self.catalog).items():
                if rows:
                    self.client.insert(table, rows, column_names=schema.CATALOG_COLUMNS[table])

    def drop(self) -> None:
        for name in reversed(schema.VIEWS):
            self.client.command(f"DROP VIEW IF EXISTS {name}")
        for name in schema.MAPPINGS:
            self.client.command(f"DROP VIEW IF EXISTS {name}")
        for name in (*schema.TABLES, schema.INTAKE):
            self.client.command(f"DROP TABLE IF EXISTS {name}")
        self._buckets.clear()

    def position(self) -> int:
        """The last store position applied (0 when nothing was)."""
        result = self.client.query(
            "SELECT max(position) FROM projection_state FINAL WHERE name = {name:String}",
            parameters={"name": STATE_NAME},
        )
        return int(result.result_rows[0][0] or 0)

    def apply(self, events: Iterable[Event | StoredEvent]) -> int:
        """Insert the rows of ``events`` (stored ones as stored, others encoded; the largest
        position seen is saved after their rows). Returns the number of events applied."""
        payloads: list[bytes] = []
        position = 0
        applied = 0
        for item in events:
            if isinstance(item, StoredEvent):
                payloads.append(item.payload)
                position = max(position, item.position)
            else:
                payloads.append(encode(item))
            if len(payloads) >= self.batch:
                applied += self._insert(payloads)
                payloads = []
        applied += self._insert(payloads)
        self._allowances()
        if position:
            self._save(position)
        return applied

    def project(self, store: EventStore, progress: bool = False) -> int:
        """Apply every stored event after the saved position; returns how many."""
        self.create()
        after = self.position()
        return self._from(store, after, progress)

    def rebuild(self, store: EventStore, progress: bool = False, direct: bool | None = None) -> int:
        """Drop every table, create them again and apply the whole store; ``direct``
        (default: whenever ClickHouse can read the store itself) lets ClickHouse read it."""
        source = self.direct_source(store)
        if direct and source is None:
            raise ProjectionError(
                "ClickHouse cannot read this store directly (only a SQLite file or a "
                "PostgreSQL server over TCP, with embedded chDB); rebuild without --direct"
            )
        self.drop()
        self.create()
        if source is not None and direct is not False:
            return self._direct(store, source, progress)
        return self._from(store, 0, progress)

    def direct_source(self, store: EventStore) -> direct.Source | None:
        """How ClickHouse reads ``store``'s events itself, if it can (``direct.source``)."""
        return direct.source(store, self.client)

    def _direct(self, store: EventStore, source: direct.Source, progress: bool) -> int:
        """Every stored event into the intake by ClickHouse alone, a range of positions
        at a time (``DIRECT_RANGE``) so progress shows and a range is saved when it is in."""
        end = store.position()
        bar = tqdm(total=end, unit=" events", disable=not progress, file=sys.stderr)
        with bar:
            after = 0
            while after < end:
                until = min(end, after + DIRECT_RANGE)
                sql = schema.intake_from(source.table, after, until, DIRECT_STREAMS, source.payload)
                try:
                    self.client.command(sql, settings=DIRECT_SETTINGS)
                except ClickHouseError as exc:
                    cause = str(exc).strip().splitlines()[0] if str(exc).strip() else "failed"
                    if source.secret:
                        cause = cause.replace(source.secret, "***")
                    raise ProjectionError(f"ClickHouse could not read the store: {cause}") from None
                self._save(until)
                bar.update(until - after)
                after = until
        self._allowances()
        return end

    def _from(self, store: EventStore, after: int, progress: bool) -> int:
        total = store.position() - after
        applied = 0
        bar = tqdm(total=max(total, 0), unit=" events", disable=not progress, file=sys.stderr)
        blocks = (
            (len(batch), batch[-1][0], b"\n".join(payload for _, payload in batch))
            for batch in store.read_payloads(after, self.batch)
        )
        with bar:
            for n, last, block in _read_ahead(blocks):
                self._insert_block(block)
                self._save(last)
                applied += n
                bar.update(n)
        # A projector that has not looked yet also catches buckets a stopped run left behind.
        if applied or not self._buckets:
            self._allowances()
        return applied

    def _insert(self, payloads: Sequence[bytes]) -> int:
        if payloads:
            self._insert_block(b"\n".join(payloads))
        return len(payloads)

    def _insert_block(self, block: bytes) -> None:
        """Events' JSON, one per line, into the intake (and so into every fact table)."""
        try:
            self.client.raw_insert(
                schema.INTAKE,
                insert_block=block,
                settings=schema.INTAKE_SETTINGS,
                fmt="JSONEachRow",
            )
        except ClickHouseError as exc:
            cause = str(exc).strip().splitlines()[0] if str(exc).strip() else "insert failed"
            raise ProjectionError(f"ClickHouse refused a batch of events: {cause}") from None

    def _allowances(self) -> None:
        """Store the catalog's allowance of every pool bucket drawn from and not yet known."""
        if self.catalog is None:
            return
        found = self.client.query(schema.NEW_POOL_BUCKETS).result_rows
        new = {(str(p), str(b)) for p, b in found} - self._buckets
        if new:
            self._buckets |= new
            rows = allowance_rows(self.catalog, new)
            if rows:
                self.client.insert(
                    "pool_allowances", rows, column_names=schema.CATALOG_COLUMNS["pool_allowances"]
                )

    def _save(self, position: int) -> None:
        self.client.insert(
            "projection_state",
            [(STATE_NAME, position)],
            column_names=("name", "position"),
        )

    def counts(self) -> dict[str, int]:
        """Rows per fact table, each event counted once."""
        out: dict[str, int] = {}
        for table in schema.FACT_TABLES:
            result = self.client.query(f"SELECT count() FROM {table} FINAL")
            out[table] = int(result.result_rows[0][0])
        return out


def _read_ahead(blocks: Iterator[_Block]) -> Iterator[_Block]:
    """``blocks``, each next one read in a thread while the caller inserts the current one:
    the store is read while ClickHouse parses (SQLite, PostgreSQL and chDB all release the
    GIL while they work)."""
    with ThreadPoolExecutor(max_workers=1) as reader:
        pending = reader.submit(next, blocks, None)
        while (block := pending.result()) is not None:
            pending = reader.submit(next, blocks, None)
            yield block
