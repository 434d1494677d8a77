"""The event store in PostgreSQL, for several writers (sink processes) at once.

Every append locks the single ``log_head`` row first and moves it before committing. That
one lock makes concurrent appends take turns: each sees the ids, stream heads and position
the previous one committed, so versions and chains stay correct, and positions become
visible strictly in order with no gaps, so a ``read_all`` consumer that has read up to
position p never misses an event that commits later with a smaller position. New events go
in with binary COPY; stream heads and inputs with one ``unnest`` statement each.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from types import TracebackType
from typing import Any

import msgspec
import psycopg
import psycopg.errors

from ..codec import current_type, decode_input
from ..domain import Cdr, Command, Event
from ..secrets import EVENT_STORE_PASSWORD, SecretError, password_in_url, secret, with_password
from . import chain, schema
from .base import (
    Problem,
    StoredEvent,
    StoredInput,
    StoredRevision,
    StoreError,
    StoreStats,
    StoreUnavailable,
    WalletSnapshot,
    correction_filter,
    counts_query,
    inputs_query,
    payloads_query,
    revision_conflict,
    safe_url,
    stream_query,
)
from .chain import ChainRow, Head
from .rows import EventRow, chain_events, first_of_each, input_rows

SCHEMES = ("postgresql://", "postgres://")

_EVENT_COLUMNS = "position, wallet_id, version, event_id, type, at, payload, hash"
_REVISION_COLUMNS = "revision, digest, name, source, published_at"
_COUNTS_AFTER = (  # the inputs of each wallet after its cut (the cuts: two arrays)
    "SELECT w, COUNT(*) FROM unnest(%s::text[], %s::bigint[]) AS cut (w, s) "
    "JOIN inputs ON wallet_id = w AND seq > s{} GROUP BY w"
)
_COPY_TYPES = ["int8", "text", "text", "int8", "text", "timestamptz", "bytea", "text", "text"]


def _stored_event(row: Sequence[Any]) -> StoredEvent:
    position, wallet_id, version, event_id, type_, *rest = row
    return StoredEvent(position, wallet_id, version, event_id, current_type(type_), *rest)


class PostgresStore:
    """An ``EventStore`` in PostgreSQL; one connection, its calls serialized by a lock.

    A connection lost to a server restart or a network failure raises
    :class:`StoreUnavailable` (nothing half-done: a transaction the server did not commit is
    rolled back, and one it did commit is recognised by its event ids when the caller
    retries); the next call connects again. Bad credentials, a missing database or a
    schema that does not match are :class:`StoreError` and are not worth retrying.
    """

    def __init__(self, url: str, connect_timeout: int = 10, chain_key: bytes | None = None) -> None:
        self.url = safe_url(url)
        self._key = chain_key
        try:
            # The password from RATING_EVENT_STORE_PASSWORD(_FILE) when the URL has none;
            # libpq's own PGPASSWORD and PGPASSFILE work as well.
            password = None if password_in_url(url) else secret(EVENT_STORE_PASSWORD)
        except SecretError as exc:
            raise StoreError(str(exc)) from None
        self._password: dict[str, Any] = {"password": password} if password else {}
        self._dsn = url
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        conn = self._connect()
        try:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (schema.POSTGRES_DDL_LOCK,))
                for ddl in schema.POSTGRES:
                    cur.execute(ddl)
        except psycopg.Error as exc:
            self._drop()
            raise self._error(exc, "cannot create the event store's tables at") from exc

    def reader_url(self) -> str:
        """The URL this store connects with, its password included, for another reader of
        the same database in this process (a direct rebuild's ``postgresql()``). Never
        print it or pass it to another process: ``url`` is the one for messages."""
        return with_password(self._dsn, self._password.get("password"))

    def _connect(self) -> psycopg.Connection[Any]:
        """A new connection (the caller holds the lock, or no other thread has the store)."""
        try:
            conn = psycopg.connect(
                self._dsn,
                autocommit=True,
                connect_timeout=self._connect_timeout,
                **self._password,
                # A server that vanished without closing the socket is noticed within
                # about 30 s instead of the kernel's two hours.
                keepalives=1,
                keepalives_idle=10,
                keepalives_interval=5,
                keepalives_count=4,
            )
            # Times come back in UTC whatever the server's default (a SET, so that any
            # ``options`` of the URL, such as a search_path, still apply).
            conn.execute("SET TIME ZONE 'UTC'")
        except psycopg.Error as exc:
            raise self._error(exc, "cannot reach the event store") from exc
        self._conn = conn
        return conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _error(self, exc: psycopg.Error, doing: str) -> StoreError:
        message = f"{doing} {self.url}: {str(exc).strip()}"
        if transient(exc):
            return StoreUnavailable(message, reason(exc))
        return StoreError(message)

    @contextmanager
    def _session(self) -> Iterator[psycopg.Connection[Any]]:
        """The connection, under the lock, connecting again if the last one was lost; a
        transient failure drops it and becomes :class:`StoreUnavailable`."""
        with self._lock:
            conn = self._conn if self._conn is not None else self._connect()
            try:
                yield conn
            except psycopg.Error as exc:
                if not transient(exc):
                    raise
                self._drop()
                raise self._error(exc, "lost the event store") from exc

    def append(
        self, events: Sequence[Event], inputs: Sequence[tuple[str, Cdr | Command]] = ()
    ) -> int:
        unique = first_of_each(events)
        new_inputs = input_rows(inputs)
        if not unique and not new_inputs:
            return 0
        with self._session() as conn, conn.transaction(), conn.cursor() as cur:
            (after,) = _one(cur.execute("SELECT position FROM log_head WHERE id = 1 FOR UPDATE"))
            cur.execute(
                "SELECT event_id FROM events WHERE event_id = ANY(%s)", ([e.id for e in unique],)
            )
            stored = {r[0] for r in cur}
            new = [e for e in unique if e.id not in stored]
            cur.execute(
                "SELECT wallet_id, version, hash FROM streams WHERE wallet_id = ANY(%s)",
                (sorted({e.wallet_id for e in new}),),
            )
            heads = {w: Head(v, h) for w, v, h in cur}
            rows = chain_events(new, heads, after, self._key)
            if rows:
                self._insert_events(cur, rows)
            if new_inputs:
                cur.execute(
                    "INSERT INTO inputs (wallet_id, key, at, payload) "
                    "SELECT w, k, a, p FROM unnest(%s::text[], %s::text[], %s::timestamptz[], "
                    "%s::bytea[]) WITH ORDINALITY AS t(w, k, a, p, n) ORDER BY n "
                    "ON CONFLICT (wallet_id, key) DO NOTHING",
                    [list(column) for column in zip(*new_inputs, strict=True)],
                )
        return len(rows)

    @staticmethod
    def _insert_events(cur: psycopg.Cursor[Any], rows: list[EventRow]) -> None:
        with cur.copy(
            "COPY events (position, event_id, wallet_id, version, type, at, payload, prev_hash,"
            " hash) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(_COPY_TYPES)
            for row in rows:
                copy.write_row(row)
        last = {r.wallet_id: r for r in rows}
        cur.execute(
            "INSERT INTO streams (wallet_id, version, hash) "
            "SELECT * FROM unnest(%s::text[], %s::int8[], %s::text[]) "
            "ON CONFLICT (wallet_id) DO UPDATE SET version = EXCLUDED.version, "
            "hash = EXCLUDED.hash",
            (list(last), [r.version for r in last.values()], [r.hash for r in last.values()]),
        )
        cur.execute("UPDATE log_head SET position = %s WHERE id = 1", (rows[-1].position,))

    def _fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._session() as conn, conn.cursor() as cur:
            return cur.execute(sql, args).fetchall()

    def read_all(self, after: int = 0, batch: int = 10_000) -> Iterator[list[StoredEvent]]:
        while True:
            rows = self._fetch(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE position > %s "
                "ORDER BY position LIMIT %s",
                (after, batch),
            )
            if not rows:
                return
            events = [_stored_event(r) for r in rows]
            yield events
            after = events[-1].position

    def read_payloads(
        self, after: int = 0, batch: int = 10_000, types: Collection[str] | None = None
    ) -> Iterator[list[tuple[int, bytes]]]:
        while True:
            rows = self._fetch(*payloads_query("payload", after, batch, types, "%s"))
            if not rows:
                return
            yield [(position, payload) for position, payload in rows]
            after = rows[-1][0]

    def read_stream(
        self,
        wallet_id: str,
        after: int = 0,
        types: Collection[str] | None = None,
        whole_after: int | None = None,
    ) -> list[StoredEvent]:
        query = stream_query(_EVENT_COLUMNS, wallet_id, after, types, whole_after, "%s")
        return [_stored_event(r) for r in self._fetch(*query)]

    def read_inputs(
        self, wallet_id: str | None = None, after: int = 0, corrections: bool = True
    ) -> Iterator[StoredInput]:
        while rows := self._fetch(*inputs_query(wallet_id, after, corrections, "%s")):
            for _seq, key, wallet, at, payload in rows:
                yield StoredInput(key, wallet, at, decode_input(key, payload))
            after = rows[-1][0]

    def marks(self) -> tuple[int, int]:
        # One statement, one snapshot of the database. Appends take inputs' numbers while
        # they hold log_head, so the numbers visible are those of whole, earlier appends.
        (row,) = self._fetch(
            "SELECT (SELECT position FROM log_head WHERE id = 1), "
            "(SELECT COALESCE(MAX(seq), 0) FROM inputs)"
        )
        return int(row[0]), int(row[1])

    def put_snapshots(self, snapshots: Sequence[WalletSnapshot]) -> int:
        if not snapshots:
            return 0
        with self._session() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute(
                "INSERT INTO wallet_snapshots (wallet_id, position, input_seq, last_at, state) "
                "SELECT * FROM unnest(%s::text[], %s::int8[], %s::int8[], %s::timestamptz[], "
                "%s::bytea[]) ON CONFLICT (wallet_id, position) DO NOTHING",
                [
                    list(column)
                    for column in zip(*map(msgspec.structs.astuple, snapshots), strict=True)
                ],
            )
            return cur.rowcount

    def latest_snapshot(
        self, wallet_id: str, position: int | None = None, before: datetime | None = None
    ) -> WalletSnapshot | None:
        rows = self._fetch(
            "SELECT wallet_id, position, input_seq, last_at, state FROM wallet_snapshots "
            "WHERE wallet_id = %s AND position <= %s AND (%s::timestamptz IS NULL "
            "OR last_at IS NULL OR last_at < %s::timestamptz) ORDER BY position DESC LIMIT 1",
            (wallet_id, position if position is not None else 2**62, before, before),
        )
        return WalletSnapshot(*rows[0]) if rows else None

    def wallets(self) -> list[str]:
        return [r[0] for r in self._fetch("SELECT wallet_id FROM streams ORDER BY wallet_id")]

    def input_counts(
        self, after: Mapping[str, int] | None = None, corrections: bool = True
    ) -> dict[str, int]:
        if after is None:
            rows = self._fetch(*counts_query(corrections, "%s"))
        else:
            extra, some = correction_filter(corrections, "%s")
            rows = self._fetch(_COUNTS_AFTER.format(extra), (list(after), [*after.values()], *some))
        return {w: int(n) for w, n in rows}

    def position(self) -> int:
        return int(self._fetch("SELECT position FROM log_head WHERE id = 1")[0][0])

    def stats(self) -> StoreStats:
        (row,) = self._fetch(
            "SELECT (SELECT COUNT(*) FROM events), (SELECT COUNT(*) FROM streams), "
            "(SELECT COUNT(*) FROM inputs), (SELECT position FROM log_head WHERE id = 1)"
        )
        return StoreStats(*(int(v) for v in row))

    def verify(self, unkeyed_until: int = 0) -> list[Problem]:
        # One snapshot for heads and events; a server-side cursor streams the rows.
        with self._session() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            heads = {
                w: Head(v, h)
                for w, v, h in conn.execute("SELECT wallet_id, version, hash FROM streams")
            }
            with conn.cursor(name="verify_events") as cur:
                cur.itersize = 10_000
                cur.execute(
                    "SELECT position, wallet_id, version, event_id, payload, prev_hash, hash "
                    "FROM events ORDER BY wallet_id, version"
                )
                rows = (ChainRow(*r) for r in cur)
                return chain.verify(rows, heads, self._key, unkeyed_until)

    def put_revision(self, revision: StoredRevision) -> bool:
        with self._session() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute(
                "INSERT INTO catalog_revisions (revision, digest, name, source, published_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (revision) DO NOTHING",
                msgspec.structs.astuple(revision),
            )
            if cur.rowcount == 1:
                return True
            cur.execute(
                f"SELECT {_REVISION_COLUMNS} FROM catalog_revisions WHERE revision = %s",
                (revision.revision,),
            )
            row = cur.fetchone()
        if row is None:  # a conflict, then no row: cannot happen
            raise StoreError(f"catalog revision {revision.revision}: neither stored nor found")
        kept = StoredRevision(*row)
        if kept.digest != revision.digest:
            raise revision_conflict(kept, revision)
        return False

    def revisions(self) -> list[StoredRevision]:
        rows = self._fetch(f"SELECT {_REVISION_COLUMNS} FROM catalog_revisions ORDER BY revision")
        return [StoredRevision(*row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._drop()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# SQLSTATEs that waiting does not fix: invalid authorization (class 28), no such database
# or schema. The rest of OperationalError is a lost connection or a server starting,
# stopping or restarting (57P01-57P03, class 08, or no SQLSTATE at all).
_PERMANENT_STATES = frozenset({"3D000", "3F000"})
_PERMANENT_TEXT = ("authentication failed", "does not exist", "no pg_hba.conf entry")


def transient(exc: psycopg.Error) -> bool:
    """Whether ``exc`` is a lost connection or a server not (yet) accepting connections,
    as opposed to a mistake that waiting cannot fix."""
    if isinstance(exc, psycopg.InterfaceError):
        return True  # "the connection is closed": connecting again fixes it
    if isinstance(exc, psycopg.errors.SerializationFailure | psycopg.errors.DeadlockDetected):
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    if state is None:  # libpq's own errors: refused, reset, closed, timed out
        return not any(text in str(exc) for text in _PERMANENT_TEXT)
    return not state.startswith("28") and state not in _PERMANENT_STATES


def reason(exc: psycopg.Error) -> str:
    """A short, bounded label of a transient error, for metrics."""
    if exc.sqlstate is None:
        return "connection_lost"
    return type(exc).__name__.lower()


def _one(cur: psycopg.Cursor[Any]) -> tuple[Any, ...]:
    row = cur.fetchone()
    if row is None:
        raise StoreError("the store's log_head row is missing: the schema was altered")
    return row
