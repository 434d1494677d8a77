"""Every SQL table, index and trigger of the event store, for SQLite and PostgreSQL.

``events`` is the log: ``position`` is global and gap-free in commit order, ``version`` counts
within a wallet's stream, ``prev_hash``/``hash`` chain each stream (see ``chain.py``).
``streams`` holds each stream's head (last version and hash): appenders read and move it in
their transaction, and ``verify`` compares it with the last event, which is how a deleted
newest event is still found. ``inputs`` keeps the CDRs and commands that were decided on,
in the order they were first stored. Triggers refuse UPDATE and DELETE (and TRUNCATE) on
``events``: nothing ever changes a stored event. ``catalog_revisions`` keeps every published
catalog whole (its number, the sha256 of its source, its file name, the source and when it
was published, as published), so a decision's revision can be decided again from the store.
``wallet_snapshots`` keeps wallet states as of a cut (the wallet's events up to ``position``,
its inputs up to ``input_seq``, the latest instant folded), so replay and the payers' states
start there instead of folding a wallet's whole history (``engine/store/snapshots.py``);
derived from the events, they may be deleted at any time.

Every statement is idempotent and runs at each open: a store written before a table existed
gains it, empty, the first time a newer engine opens it (tests/store/test_stored_v1.py).
"""

from __future__ import annotations

SQLITE: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS events (
        position  INTEGER PRIMARY KEY,
        event_id  TEXT    NOT NULL UNIQUE,
        wallet_id TEXT    NOT NULL,
        version   INTEGER NOT NULL,
        type      TEXT    NOT NULL,
        at        TEXT    NOT NULL,
        payload   BLOB    NOT NULL,
        prev_hash TEXT    NOT NULL,
        hash      TEXT    NOT NULL,
        UNIQUE (wallet_id, version)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS streams (
        wallet_id TEXT    PRIMARY KEY,
        version   INTEGER NOT NULL,
        hash      TEXT    NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS inputs (
        seq       INTEGER PRIMARY KEY,
        wallet_id TEXT    NOT NULL,
        key       TEXT    NOT NULL,
        at        TEXT    NOT NULL,
        payload   BLOB    NOT NULL,
        UNIQUE (wallet_id, key)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS catalog_revisions (
        revision     INTEGER PRIMARY KEY,
        digest       TEXT    NOT NULL,
        name         TEXT    NOT NULL,
        source       TEXT    NOT NULL,
        published_at TEXT    NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS wallet_snapshots (
        wallet_id TEXT    NOT NULL,
        position  INTEGER NOT NULL,
        input_seq INTEGER NOT NULL,
        last_at   TEXT,
        state     BLOB    NOT NULL,
        PRIMARY KEY (wallet_id, position)
    )
    """,
    """
    CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE refused'); END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only: DELETE refused'); END
    """,
)

# Several processes may open the same database at once: the DDL runs under this advisory
# lock so that concurrent CREATE ... IF NOT EXISTS cannot collide.
POSTGRES_DDL_LOCK = 0x5245_5354  # "REST": rating-engine store

POSTGRES: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS events (
        position  BIGINT      PRIMARY KEY,
        event_id  TEXT        NOT NULL UNIQUE,
        wallet_id TEXT        NOT NULL,
        version   BIGINT      NOT NULL,
        type      TEXT        NOT NULL,
        at        TIMESTAMPTZ NOT NULL,
        payload   BYTEA       NOT NULL,
        prev_hash TEXT        NOT NULL,
        hash      TEXT        NOT NULL,
        UNIQUE (wallet_id, version)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS streams (
        wallet_id TEXT   PRIMARY KEY,
        version   BIGINT NOT NULL,
        hash      TEXT   NOT NULL
    )
    """,
    # One row: the last position. Every append locks and moves it inside its transaction, so
    # appends commit one after another and positions become visible in order, without gaps
    # (a BIGSERIAL hands out numbers that can commit out of order, or never).
    """
    CREATE TABLE IF NOT EXISTS log_head (
        id       SMALLINT PRIMARY KEY CHECK (id = 1),
        position BIGINT   NOT NULL
    )
    """,
    "INSERT INTO log_head (id, position) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
    """
    CREATE TABLE IF NOT EXISTS inputs (
        seq       BIGSERIAL   PRIMARY KEY,
        wallet_id TEXT        NOT NULL,
        key       TEXT        NOT NULL,
        at        TIMESTAMPTZ NOT NULL,
        payload   BYTEA       NOT NULL,
        UNIQUE (wallet_id, key)
    )
    """,
    # published_at stays the RFC 3339 text of the record, as published.
    """
    CREATE TABLE IF NOT EXISTS catalog_revisions (
        revision     BIGINT PRIMARY KEY,
        digest       TEXT   NOT NULL,
        name         TEXT   NOT NULL,
        source       TEXT   NOT NULL,
        published_at TEXT   NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS wallet_snapshots (
        wallet_id TEXT        NOT NULL,
        position  BIGINT      NOT NULL,
        input_seq BIGINT      NOT NULL,
        last_at   TIMESTAMPTZ,
        state     BYTEA       NOT NULL,
        PRIMARY KEY (wallet_id, position)
    )
    """,
    """
    CREATE OR REPLACE FUNCTION events_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'events are append-only: % refused', TG_OP
            USING ERRCODE = 'restrict_violation';
    END
    $$
    """,
    """
    DO $$
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'events_no_change'
                       AND tgrelid = 'events'::regclass) THEN
            CREATE TRIGGER events_no_change BEFORE UPDATE OR DELETE ON events
                FOR EACH ROW EXECUTE FUNCTION events_append_only();
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'events_no_truncate'
                       AND tgrelid = 'events'::regclass) THEN
            CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
                FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();
        END IF;
    END
    $$
    """,
)
