"""Where ClickHouse can read the event store itself, for a direct rebuild.

Only embedded chDB qualifies: it runs in this process, so it sees the SQLite file the store
has open, and a PostgreSQL store's credentials, which must be written into the
``postgresql()`` table function, never leave the process. A ClickHouse server would need the
store's file on its own disk, or its own route and credentials to PostgreSQL; it takes the
Python path instead (``Projector.rebuild``).

PostgreSQL hands ``bytea`` to ClickHouse as text in its ``hex`` output format (``\\x7b22…``,
the server's default ``bytea_output``), so the payload is unhexed there; SQLite gives the
bytes as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

from ..store.base import EventStore
from ..store.postgres import PostgresStore
from ..store.sqlite import SqliteStore, sqlite_path
from .clickhouse import Client


class Source(NamedTuple):
    """How ClickHouse reads the store's ``events`` table."""

    table: str
    """The table function, e.g. ``sqlite('/data/events.db', 'events')``."""
    payload: str
    """SQL over that table: an event's stored JSON as a ``String``."""
    secret: str = ""
    """A password written into ``table``, to be kept out of any message."""


def source(store: EventStore, client: Client) -> Source | None:
    """The way ClickHouse behind ``client`` reads ``store``'s events, if it can."""
    if type(client).__name__ != "ChdbClient":
        return None
    if isinstance(store, SqliteStore):
        path = sqlite_path(store.url)
        if path == ":memory:":
            return None
        return Source(f"sqlite({_quoted(str(Path(path).resolve()))}, 'events')", "payload")
    if isinstance(store, PostgresStore):
        return postgres_source(store.reader_url())
    return None


def postgres_source(url: str) -> Source | None:
    """``postgresql()`` reading the ``events`` table of the store at ``url`` (host and port,
    database, user, password, and the schema of a ``-csearch_path=`` option); None for a
    server reached by its unix socket, which ClickHouse cannot use."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    host = parts.hostname or query.get("host", [""])[0]
    if not host or host.startswith("/"):
        return None
    port = parts.port or int(query.get("port", ["5432"])[0])
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    user = unquote(parts.username or "postgres")
    password = unquote(parts.password or "")
    database = unquote(parts.path.lstrip("/")) or user
    args = [address, database, "events", user, password]
    schema = _search_path(query.get("options", [""])[0])
    if schema:
        args.append(schema)
    table = "postgresql(" + ", ".join(_quoted(a) for a in args) + ")"
    return Source(table, "unhex(substring(payload, 3))", password)


def _search_path(options: str) -> str:
    """The first schema of a ``-csearch_path=NAME`` (or ``-c search_path=NAME``) option."""
    compact = options.replace("-c ", "-c")
    for option in compact.split():
        if option.startswith("-csearch_path="):
            return option.removeprefix("-csearch_path=").split(",")[0].strip()
    return ""


def _quoted(value: str) -> str:
    """``value`` as a ClickHouse string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
