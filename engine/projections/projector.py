"""The projector: folds events (or the event store) into the ClickHouse tables of ``schema``.

``apply`` is idempotent on event ids (the tables are ReplacingMergeTrees read ``FINAL``), so
a batch delivered twice changes no figure. ``project`` continues after the last position
applied; ``rebuild`` starts again from nothing and gives the same rows.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence

from tqdm import tqdm

from ..codec import decode_event
from ..domain import Catalog, Event
from ..store.base import EventStore, StoredEvent
from . import schema
from .clickhouse import Client
from .rows import CATALOG_COLUMNS, COLUMNS, Rows, allowance_rows, catalog_rows

STATE_NAME = "events"


class Projector:
    """Writes projections through ``client``; ``catalog`` fills the catalog tables and pool
    allowances (without it those tables stay empty)."""

    def __init__(self, client: Client, catalog: Catalog | None = None, batch: int = 50_000):
        self.client = client
        self.catalog = catalog
        self.batch = batch
        self._buckets: set[tuple[str, str]] = set()

    def create(self) -> None:
        """Create every table and view that is missing, and load the catalog tables."""
        for ddl in (*schema.TABLES.values(), *schema.VIEWS.values()):
            self.client.command(ddl)
        if self.catalog is not None:
            for table, rows in catalog_rows(self.catalog).items():
                if rows:
                    self.client.insert(table, rows, column_names=CATALOG_COLUMNS[table])

    def drop(self) -> None:
        for name in reversed(schema.VIEWS):
            self.client.command(f"DROP VIEW IF EXISTS {name}")
        for name in schema.TABLES:
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
        """Insert the rows of ``events`` (stored ones are decoded; the largest position seen
        is saved after their rows). Returns the number of events applied."""
        rows = Rows()
        position = 0
        decoded: list[Event] = []
        for item in events:
            if isinstance(item, StoredEvent):
                decoded.append(decode_event(item.payload))
                position = max(position, item.position)
            else:
                decoded.append(item)
            if len(decoded) >= self.batch:
                rows.add(decoded)
                decoded.clear()
                self._flush(rows)
                rows = Rows()
        rows.add(decoded)
        self._flush(rows)
        if position:
            self._save(position)
        return rows.events

    def project(self, store: EventStore, progress: bool = False) -> int:
        """Apply every stored event after the saved position; returns how many."""
        self.create()
        after = self.position()
        return self._from(store, after, progress)

    def rebuild(self, store: EventStore, progress: bool = False) -> int:
        """Drop every table, create them again and apply the whole store."""
        self.drop()
        self.create()
        return self._from(store, 0, progress)

    def _from(self, store: EventStore, after: int, progress: bool) -> int:
        total = store.position() - after
        applied = 0
        bar = tqdm(total=max(total, 0), unit=" events", disable=not progress, file=sys.stderr)
        with bar:
            for batch in store.read_all(after, self.batch):
                n = self._apply_stored(batch)
                applied += n
                bar.update(n)
        return applied

    def _apply_stored(self, batch: Sequence[StoredEvent]) -> int:
        if not batch:
            return 0
        rows = Rows()
        rows.add([decode_event(s.payload) for s in batch])
        self._flush(rows)
        self._save(batch[-1].position)
        return len(batch)

    def _flush(self, rows: Rows) -> None:
        for table, columns in rows.columns.items():
            if columns[0]:
                self.client.insert(
                    table, columns, column_names=COLUMNS[table], column_oriented=True
                )
        if self.catalog is not None:
            new = rows.pool_buckets() - self._buckets
            if new:
                self._buckets |= new
                found = allowance_rows(self.catalog, new)
                if found:
                    self.client.insert(
                        "pool_allowances", found, column_names=CATALOG_COLUMNS["pool_allowances"]
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
