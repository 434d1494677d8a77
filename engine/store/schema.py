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
derived from the events, they may be deleted at any time. ``events_adjustments`` is a partial
index of the ``RatingAdjusted`` events: a replay reads them out of the whole log (some are
paid for other wallets' CDRs), and with it that read grows with the adjustments, not the log.
``inputs_by_wallet`` gives a wallet's inputs in stored order, which replay reads from a cut.

Every statement is idempotent and runs at each open: a store written before a table existed
gains it, empty, the first time a newer engine opens it (tests/store/test_stored_v1.py).
"""

from __future__ import annotations

from ..codec import stored_names

ADJUSTMENTS = stored_names("RatingAdjusted")
"""The names ``RatingAdjusted`` is stored under, in the order ``read_payloads`` asks for
them (``type IN (...)``): a query must name them as the index does for the database to use
it. An index built before a rename (with fewer names) is no longer used, and the read scans
the log as it did before the index: slower, never different."""

ADJUSTMENTS_INDEX = (
    "CREATE INDEX IF NOT EXISTS events_adjustments ON events (position) "
    "WHERE type IN (" + ", ".join("'" + name + "'" for name in ADJUSTMENTS) + ")"
)
"""Built at the first open by an engine that has it: one scan of the log (on PostgreSQL
holding off appends while it runs), then an entry per adjustment appended."""


def _postgres_index(table: str, name: str, ddl: str) -> str:
    """``ddl`` run only when ``table`` has no index ``name``: PostgreSQL's ``CREATE INDEX IF
    NOT EXISTS`` locks the table against writes before it looks, and a store is opened by
    every worker and sink while others append."""
    return f"""
    DO $$
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_index JOIN pg_class ON pg_class.oid = indexrelid
                       WHERE indrelid = '{table}'::regclass AND relname = '{name}') THEN
            {ddl};
        END IF;
    END
    $$
    """


INPUTS_INDEX = "CREATE INDEX IF NOT EXISTS inputs_by_wallet ON inputs (wallet_id, seq)"
"""A wallet's inputs in the order they were stored: replay reads them a batch at a time
from a cut, which without it finds every one of the wallet's inputs and sorts them, once
per batch."""

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
    ADJUSTMENTS_INDEX,
    INPUTS_INDEX,
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
    _postgres_index("events", "events_adjustments", ADJUSTMENTS_INDEX),
    _postgres_index("inputs", "inputs_by_wallet", INPUTS_INDEX),
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
