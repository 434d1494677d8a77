"""The append-only event store: one interface (``base.EventStore``), SQLite and PostgreSQL.

``open_store(url)`` picks the backend by the URL's scheme: ``sqlite:///path/to/events.db``
(``sqlite:////absolute/path.db``, ``sqlite:///:memory:``) or ``postgresql://user@host/db``.
"""

from __future__ import annotations

from typing import Literal

from .base import (
    EventStore,
    Problem,
    StoredEvent,
    StoredInput,
    StoredRevision,
    StoreError,
    StoreStats,
    StoreUnavailable,
    append_decisions,
    safe_url,
)
from .chain import chain_key as chain_key_from_env


def open_store(url: str, chain_key: bytes | Literal["env"] | None = "env") -> EventStore:
    """The store at ``url``, its schema created if missing; ``StoreError`` if it cannot be.
    Its hash chain is keyed with ``chain_key``, by default the key from the environment
    (``chain.chain_key``: ``RATING_CHAIN_KEY`` or ``RATING_CHAIN_KEY_FILE``), if any."""
    key = chain_key_from_env() if chain_key == "env" else chain_key
    if url.startswith("sqlite:"):
        from .sqlite import SqliteStore

        return SqliteStore(url, chain_key=key)
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        return PostgresStore(url, chain_key=key)
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
    "StoredRevision",
    "append_decisions",
    "open_store",
]
