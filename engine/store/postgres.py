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
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any

import psycopg

from ..codec import decode_input
from ..domain import Cdr, Command, Event
from ..secrets import EVENT_STORE_PASSWORD, SecretError, password_in_url, secret
from . import chain, schema
from .base import Problem, StoredEvent, StoredInput, StoreError, StoreStats, safe_url
from .chain import ChainRow, Head
from .rows import EventRow, chain_events, first_of_each, input_rows

SCHEMES = ("postgresql://", "postgres://")

_EVENT_COLUMNS = "position, wallet_id, version, event_id, type, at, payload, hash"
_COPY_TYPES = ["int8", "text", "text", "int8", "text", "timestamptz", "bytea", "text", "text"]


class PostgresStore:
    """An ``EventStore`` in PostgreSQL; one connection, its calls serialized by a lock."""

    def __init__(self, url: str, connect_timeout: int = 10, chain_key: bytes | None = None) -> None:
        self.url = safe_url(url)
        self._key = chain_key
        try:
            # The password from RATING_EVENT_STORE_PASSWORD(_FILE) when the URL has none;
            # libpq's own PGPASSWORD and PGPASSFILE work as well.
            password = None if password_in_url(url) else secret(EVENT_STORE_PASSWORD)
        except SecretError as exc:
            raise StoreError(str(exc)) from None
        extra: dict[str, Any] = {"password": password} if password else {}
        try:
            self._conn = psycopg.connect(
                url, autocommit=True, connect_timeout=connect_timeout, **extra
            )
        except psycopg.Error as exc:
            raise StoreError(f"cannot reach the event store {self.url}: {exc}") from exc
        self._lock = threading.Lock()
        # Times come back in UTC whatever the server's default (a SET, so that any
        # ``options`` of the URL, such as a search_path, still apply).
        self._conn.execute("SET TIME ZONE 'UTC'")
        try:
            with self._conn.transaction(), self._conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (schema.POSTGRES_DDL_LOCK,))
                for ddl in schema.POSTGRES:
                    cur.execute(ddl)
        except psycopg.Error as exc:
            self._conn.close()
            raise StoreError(
                f"cannot create the event store's tables at {self.url}: {exc}"
            ) from exc

    def append(
        self, events: Sequence[Event], inputs: Sequence[tuple[str, Cdr | Command]] = ()
    ) -> int:
        unique = first_of_each(events)
        new_inputs = input_rows(inputs)
        if not unique and not new_inputs:
            return 0
        with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
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
        with self._lock, self._conn.cursor() as cur:
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
            events = [StoredEvent(*r) for r in rows]
            yield events
            after = events[-1].position

    def read_payloads(
        self, after: int = 0, batch: int = 10_000
    ) -> Iterator[list[tuple[int, bytes]]]:
        while True:
            rows = self._fetch(
                "SELECT position, payload FROM events WHERE position > %s "
                "ORDER BY position LIMIT %s",
                (after, batch),
            )
            if not rows:
                return
            yield [(position, payload) for position, payload in rows]
            after = rows[-1][0]

    def read_stream(self, wallet_id: str) -> list[StoredEvent]:
        rows = self._fetch(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE wallet_id = %s ORDER BY version",
            (wallet_id,),
        )
        return [StoredEvent(*r) for r in rows]

    def read_inputs(
        self, wallet_id: str | None = None, batch: int = 10_000
    ) -> Iterator[StoredInput]:
        where = "" if wallet_id is None else "AND wallet_id = %s"
        args: tuple[str, ...] = () if wallet_id is None else (wallet_id,)
        after = 0
        while True:
            rows = self._fetch(
                f"SELECT seq, key, wallet_id, at, payload FROM inputs WHERE seq > %s {where} "
                "ORDER BY seq LIMIT %s",
                (after, *args, batch),
            )
            if not rows:
                return
            for _seq, key, wallet, at, payload in rows:
                yield StoredInput(key, wallet, at, decode_input(key, payload))
            after = rows[-1][0]

    def wallets(self) -> list[str]:
        return [r[0] for r in self._fetch("SELECT wallet_id FROM streams ORDER BY wallet_id")]

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
        with self._lock, self._conn.transaction():
            self._conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            heads = {
                w: Head(v, h)
                for w, v, h in self._conn.execute("SELECT wallet_id, version, hash FROM streams")
            }
            with self._conn.cursor(name="verify_events") as cur:
                cur.itersize = 10_000
                cur.execute(
                    "SELECT position, wallet_id, version, event_id, payload, prev_hash, hash "
                    "FROM events ORDER BY wallet_id, version"
                )
                rows = (ChainRow(*r) for r in cur)
                return chain.verify(rows, heads, self._key, unkeyed_until)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _one(cur: psycopg.Cursor[Any]) -> tuple[Any, ...]:
    row = cur.fetchone()
    if row is None:
        raise StoreError("the store's log_head row is missing: the schema was altered")
    return row
