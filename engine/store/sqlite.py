"""The event store in one SQLite file: the embedded default.

WAL lets readers (projections, ``verify``) run beside the writer. ``synchronous=FULL``
because the sink commits its Kafka offsets once ``append`` returns: in WAL mode NORMAL may
lose the last transactions on a power cut, and those events would then never be written
again. FULL costs one fsync per append, which a batch of a thousand events amortizes.
Appends take the write lock up front (``BEGIN IMMEDIATE``), so versions and hashes are
computed from what is really stored, even with several processes on one file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from types import TracebackType
from typing import Any

import msgspec

from ..codec import current_type, decode_input
from ..domain import Cdr, Command, Event
from . import chain, schema
from .base import (
    Problem,
    StoredEvent,
    StoredInput,
    StoredRevision,
    StoreError,
    StoreStats,
    WalletSnapshot,
    correction_filter,
    counts_query,
    inputs_query,
    payloads_query,
    revision_conflict,
    stream_query,
)
from .chain import ChainRow, Head
from .rows import chain_events, first_of_each, input_rows

PREFIX = "sqlite:///"
# Well under SQLite's limit on bound parameters in one statement.
_CHUNK = 500

# CAST: a payload an administrator rewrote as TEXT still reads (and verifies) as bytes.
_EVENT_COLUMNS = "position, wallet_id, version, event_id, type, at, CAST(payload AS BLOB), hash"

_REVISION_COLUMNS = "revision, digest, name, source, published_at"


def sqlite_path(url: str) -> str:
    """``sqlite:///relative.db``, ``sqlite:////absolute.db`` or ``sqlite:///:memory:``."""
    if not url.startswith(PREFIX) or len(url) == len(PREFIX):
        raise StoreError(f"{url!r} is not a SQLite store URL: use sqlite:///path/to/events.db")
    return url[len(PREFIX) :]


def _stored_event(row: tuple[Any, ...]) -> StoredEvent:
    position, wallet_id, version, event_id, type_, at, payload, digest = row
    return StoredEvent(
        position,
        wallet_id,
        version,
        event_id,
        current_type(type_),
        datetime.fromisoformat(at),
        payload,
        digest,
    )


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(values), _CHUNK):
        yield values[i : i + _CHUNK]


class _Instants:
    """The ``at`` column's text of each instant in one append, written once per instant: a
    CDR's input and its rated event hold the same ``datetime``, and ``isoformat`` of an
    aware one is as dear as encoding the event. Keyed by identity, which the batch's rows
    keep alive for as long as this lives."""

    __slots__ = ("_texts",)

    def __init__(self) -> None:
        self._texts: dict[int, str] = {}

    def text(self, at: datetime) -> str:
        text = self._texts.get(id(at))
        if text is None:
            text = self._texts[id(at)] = at.isoformat()
        return text


class SqliteStore:
    """An ``EventStore`` in a SQLite file; one connection, safe to share between threads."""

    def __init__(self, url: str, chain_key: bytes | None = None) -> None:
        self.url = url
        self._key = chain_key
        path = sqlite_path(url)
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=30000")
            with self._transaction() as db:
                for ddl in schema.SQLITE:
                    db.execute(ddl)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the event store {url}: {exc}") from exc
        self._lock = threading.Lock()

    @contextmanager
    def _transaction(self, mode: str = "IMMEDIATE") -> Iterator[sqlite3.Connection]:
        self._db.execute(f"BEGIN {mode}")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def append(
        self, events: Sequence[Event], inputs: Sequence[tuple[str, Cdr | Command]] = ()
    ) -> int:
        unique = first_of_each(events)
        new_inputs = input_rows(inputs)
        if not unique and not new_inputs:
            return 0
        with self._lock, self._transaction() as db:
            stored = self._stored_ids(db, [e.id for e in unique])
            new = [e for e in unique if e.id not in stored]
            heads = self._heads(db, sorted({e.wallet_id for e in new}))
            (after,) = db.execute("SELECT COALESCE(MAX(position), 0) FROM events").fetchone()
            rows = chain_events(new, heads, after, self._key)
            texts = _Instants()
            db.executemany(
                "INSERT INTO events (position, event_id, wallet_id, version, type, at, payload,"
                " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(*r[:5], texts.text(r.at), *r[6:]) for r in rows],
            )
            db.executemany(
                "INSERT INTO streams (wallet_id, version, hash) VALUES (?, ?, ?) "
                "ON CONFLICT (wallet_id) DO UPDATE SET version = excluded.version, "
                "hash = excluded.hash",
                [(w, heads[w].version, heads[w].hash) for w in {r.wallet_id for r in rows}],
            )
            db.executemany(
                "INSERT INTO inputs (wallet_id, key, at, payload) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (wallet_id, key) DO NOTHING",
                [(r.wallet_id, r.key, texts.text(r.at), r.payload) for r in new_inputs],
            )
        return len(rows)

    @staticmethod
    def _stored_ids(db: sqlite3.Connection, ids: Sequence[str]) -> set[str]:
        stored: set[str] = set()
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT event_id FROM events WHERE event_id IN ({marks})"
            stored.update(r[0] for r in db.execute(sql, chunk))
        return stored

    @staticmethod
    def _heads(db: sqlite3.Connection, wallets: Sequence[str]) -> dict[str, Head]:
        heads: dict[str, Head] = {}
        for chunk in _chunks(wallets):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT wallet_id, version, hash FROM streams WHERE wallet_id IN ({marks})"
            heads.update((w, Head(v, h)) for w, v, h in db.execute(sql, chunk))
        return heads

    def read_all(self, after: int = 0, batch: int = 10_000) -> Iterator[list[StoredEvent]]:
        while True:
            with self._lock:
                rows = self._db.execute(
                    f"SELECT {_EVENT_COLUMNS} FROM events WHERE position > ? "
                    "ORDER BY position LIMIT ?",
                    (after, batch),
                ).fetchall()
            if not rows:
                return
            events = [_stored_event(r) for r in rows]
            yield events
            after = events[-1].position

    def read_payloads(
        self, after: int = 0, batch: int = 10_000, types: Collection[str] | None = None
    ) -> Iterator[list[tuple[int, bytes]]]:
        while True:
            sql, args = payloads_query("CAST(payload AS BLOB)", after, batch, types, "?")
            with self._lock:
                rows = self._db.execute(sql, args).fetchall()
            if not rows:
                return
            yield rows
            after = rows[-1][0]

    def read_stream(
        self,
        wallet_id: str,
        after: int = 0,
        types: Collection[str] | None = None,
        whole_after: int | None = None,
    ) -> list[StoredEvent]:
        sql, args = stream_query(_EVENT_COLUMNS, wallet_id, after, types, whole_after, "?")
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [_stored_event(r) for r in rows]

    def read_inputs(
        self, wallet_id: str | None = None, after: int = 0, corrections: bool = True
    ) -> Iterator[StoredInput]:
        while True:
            sql, args = inputs_query(wallet_id, after, corrections, "?")
            with self._lock:
                rows = self._db.execute(sql, args).fetchall()
            if not rows:
                return
            for _seq, key, wallet, at, payload in rows:
                yield StoredInput(
                    key, wallet, datetime.fromisoformat(at), decode_input(key, payload)
                )
            after = rows[-1][0]

    def marks(self) -> tuple[int, int]:
        with self._lock:
            (row,) = self._db.execute(
                "SELECT (SELECT COALESCE(MAX(position), 0) FROM events), "
                "(SELECT COALESCE(MAX(seq), 0) FROM inputs)"
            ).fetchall()
        return int(row[0]), int(row[1])

    def put_snapshots(self, snapshots: Sequence[WalletSnapshot]) -> int:
        with self._lock, self._transaction() as db:
            before = db.total_changes
            db.executemany(
                "INSERT INTO wallet_snapshots (wallet_id, position, input_seq, last_at, state) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (wallet_id, position) DO NOTHING",
                [
                    (
                        s.wallet_id,
                        s.position,
                        s.input_seq,
                        None if s.last_at is None else s.last_at.isoformat(),
                        s.state,
                    )
                    for s in snapshots
                ],
            )
            return db.total_changes - before

    def latest_snapshot(
        self, wallet_id: str, position: int | None = None, before: datetime | None = None
    ) -> WalletSnapshot | None:
        with self._lock:
            rows = self._db.execute(
                "SELECT wallet_id, position, input_seq, last_at, CAST(state AS BLOB) "
                "FROM wallet_snapshots WHERE wallet_id = ? AND position <= ? "
                "ORDER BY position DESC",
                (wallet_id, position if position is not None else 2**62),
            )
            for w, p, seq, last_at, state in rows:
                # Instants compared as instants, here (the text is not ordered across offsets).
                at = None if last_at is None else datetime.fromisoformat(last_at)
                if before is None or at is None or at < before:
                    return WalletSnapshot(w, p, seq, at, state)
        return None

    def wallets(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT wallet_id FROM streams ORDER BY wallet_id").fetchall()
        return [r[0] for r in rows]

    def input_counts(
        self, after: Mapping[str, int] | None = None, corrections: bool = True
    ) -> dict[str, int]:
        with self._lock:
            if after is None:
                sql, args = counts_query(corrections, "?")
                return {w: int(n) for w, n in self._db.execute(sql, args)}
            extra, some = correction_filter(corrections, "?")
            sql = f"SELECT COUNT(*) FROM inputs WHERE wallet_id = ? AND seq > ?{extra}"
            counts = {
                w: int(self._db.execute(sql, (w, seq, *some)).fetchone()[0])
                for w, seq in after.items()
            }
        return {w: n for w, n in counts.items() if n}

    def position(self) -> int:
        with self._lock:
            (position,) = self._db.execute(
                "SELECT COALESCE(MAX(position), 0) FROM events"
            ).fetchone()
        return int(position)

    def stats(self) -> StoreStats:
        with self._lock, self._transaction("DEFERRED") as db:
            (row,) = db.execute(
                "SELECT (SELECT COUNT(*) FROM events), (SELECT COUNT(*) FROM streams), "
                "(SELECT COUNT(*) FROM inputs), (SELECT COALESCE(MAX(position), 0) FROM events)"
            ).fetchall()
        return StoreStats(*(int(v) for v in row))

    def verify(self, unkeyed_until: int = 0) -> list[Problem]:
        # One read transaction: heads and events from the same snapshot.
        with self._lock, self._transaction("DEFERRED") as db:
            heads = {
                w: Head(v, h)
                for w, v, h in db.execute("SELECT wallet_id, version, hash FROM streams")
            }
            rows: Iterable[ChainRow] = (
                ChainRow(*r)
                for r in db.execute(
                    "SELECT position, wallet_id, version, event_id, CAST(payload AS BLOB), "
                    "prev_hash, hash FROM events ORDER BY wallet_id, version"
                )
            )
            return chain.verify(rows, heads, self._key, unkeyed_until)

    def put_revision(self, revision: StoredRevision) -> bool:
        with self._lock, self._transaction() as db:
            kept = self._revision(db, revision.revision)
            if kept is None:
                db.execute(
                    "INSERT INTO catalog_revisions (revision, digest, name, source, published_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    msgspec.structs.astuple(revision),
                )
                return True
        if kept.digest != revision.digest:
            raise revision_conflict(kept, revision)
        return False

    @staticmethod
    def _revision(db: sqlite3.Connection, number: int) -> StoredRevision | None:
        row = db.execute(
            f"SELECT {_REVISION_COLUMNS} FROM catalog_revisions WHERE revision = ?", (number,)
        ).fetchone()
        return None if row is None else StoredRevision(*row)

    def revisions(self) -> list[StoredRevision]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_REVISION_COLUMNS} FROM catalog_revisions ORDER BY revision"
            ).fetchall()
        return [StoredRevision(*row) for row in rows]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
