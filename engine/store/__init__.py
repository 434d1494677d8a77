"""The append-only event store: one interface (``base.EventStore``), SQLite and PostgreSQL.

``open_store(url)`` picks the backend by the URL's scheme: ``sqlite:///path/to/events.db``
(``sqlite:////absolute/path.db``, ``sqlite:///:memory:``) or ``postgresql://user@host/db``.
"""

from __future__ import annotations

from .base import (
    EventStore,
    Problem,
    StoredEvent,
    StoredInput,
    StoreError,
    StoreStats,
    StoreUnavailable,
    safe_url,
)


def open_store(url: str) -> EventStore:
    """The store at ``url``, its schema created if missing; ``StoreError`` if it cannot be."""
    if url.startswith("sqlite:"):
        from .sqlite import SqliteStore

        return SqliteStore(url)
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        return PostgresStore(url)
    raise StoreError(
        f"unknown event store URL {safe_url(url)!r}: "
        "use sqlite:///path/to/events.db or postgresql://user@host/database"
    )


__all__ = [
    "EventStore",
    "Problem",
    "StoreError",
    "StoreStats",
    "StoreUnavailable",
    "StoredEvent",
    "StoredInput",
    "open_store",
]
