"""A store written before the network actions were renamed still reads, verifies, folds and
projects exactly as it did: event stores are kept forever, so old names must keep decoding.

``tests/fixtures/store_v1`` was written by ``rating-engine rate --store`` before the rename
(its README says how); ``expected.json`` holds what that version read from it. The store
holds ``BarSims`` and ``UnbarSims`` under their old names.
"""

from __future__ import annotations

import hashlib
import itertools
import shutil
from pathlib import Path
from typing import Any

import msgspec
import pytest

from engine.codec import decode_decision, decode_event
from engine.domain import fold, initial_state
from engine.domain.events import SimsBarred, SimsUnbarred
from engine.projections.clickhouse import connect
from engine.projections.projector import Projector
from engine.projections.schema import FACT_TABLES
from engine.store import StoredRevision
from engine.store.sqlite import SqliteStore

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "store_v1"
_databases = itertools.count(1)


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    # A copy: opening a WAL store writes beside it, and the fixture must stay as committed.
    shutil.copy(FIXTURE / "events.db", tmp_path / "events.db")
    return SqliteStore(f"sqlite:///{tmp_path / 'events.db'}")


def expected() -> dict[str, Any]:
    return msgspec.json.decode((FIXTURE / "expected.json").read_bytes())  # type: ignore[no-any-return]


def balances(store: SqliteStore) -> dict[str, list[Any]]:
    """Each wallet's folded state, as the figures a wallet is judged by."""
    out: dict[str, list[Any]] = {}
    for wallet in store.wallets():
        events = [decode_event(s.payload) for s in store.read_stream(wallet)]
        s = fold(initial_state(wallet), events)
        out[wallet] = [s.credit, s.debt, s.uncollected, s.suspended, len(events)]
    return out


def projected(store: SqliteStore, chdb_path: Path, direct: bool) -> dict[str, Any]:
    """Per fact table its row count and the sha256 of its rows in order, and the balances view."""
    client = connect(f"chdb://{chdb_path}?database=v1_{next(_databases)}")
    try:
        Projector(client).rebuild(store, direct=direct)
        out: dict[str, Any] = {}
        for table in FACT_TABLES:
            rows = client.query(f"SELECT * FROM {table} FINAL ORDER BY ALL").result_rows
            digest = hashlib.sha256(repr(rows).encode()).hexdigest()
            out[table] = [len(rows), digest]
        out["wallet_balances"] = [
            list(r)
            for r in client.query(
                "SELECT wallet, balance, credited, debited, expired, uncollected "
                "FROM wallet_balances ORDER BY wallet"
            ).result_rows
        ]
        return out
    finally:
        client.close()


def test_the_old_store_gains_an_empty_table_of_catalog_revisions(store: SqliteStore) -> None:
    """Written before catalog revisions were kept: opening it adds the table, empty."""
    assert store.revisions() == []
    revision = StoredRevision(
        1, "ab" * 32, "catalog.yaml", "providers: []\n", "2026-11-30T12:00:00Z"
    )
    assert store.put_revision(revision) is True
    assert store.revisions() == [revision]
    assert store.verify() == [] and store.stats().events == expected()["events"]


def test_the_old_store_verifies_its_hash_chain(store: SqliteStore) -> None:
    assert store.verify() == []
    assert store.stats().events == expected()["events"]


def test_the_old_names_decode_as_the_new_ones(store: SqliteStore) -> None:
    stored = [s for b in store.read_all() for s in b]
    barred = [s for s in stored if b'"type":"BarSims"' in s.payload]
    unbarred = [s for s in stored if b'"type":"UnbarSims"' in s.payload]
    assert len(barred) == len(unbarred) == 1
    assert isinstance(decode_event(barred[0].payload), SimsBarred)
    assert isinstance(decode_event(unbarred[0].payload), SimsUnbarred)
    # The row's type column says what the payload decodes as.
    assert (barred[0].type, unbarred[0].type) == ("SimsBarred", "SimsUnbarred")
    assert len([decode_event(s.payload) for s in stored]) == expected()["events"]


def test_old_wallet_events_records_decode() -> None:
    """Records on ``wallet.events`` written before the rename, as the sink and recovery
    read them."""
    lines = (FIXTURE / "decisions.jsonl").read_bytes().splitlines()
    actions = [type(e) for line in lines for e in decode_decision(line).events]
    assert SimsBarred in actions and SimsUnbarred in actions


def test_the_old_store_folds_to_the_same_balances(store: SqliteStore) -> None:
    assert balances(store) == expected()["balances"]


@pytest.mark.parametrize("direct", [False, True], ids=["rows", "direct"])
def test_the_old_store_projects_the_same_rows(
    store: SqliteStore, chdb_path: Path, direct: bool
) -> None:
    """Tables added since get no rows from events that predate them (``pool_cycles``), but
    ``wallet_lifecycle``, which has a row per ``WalletOpened`` those events hold."""
    rows = projected(store, chdb_path, direct)
    then = expected()["projections"]
    assert {table: rows[table] for table in then} == then
    opened = sum(1 for batch in store.read_all() for r in batch if r.type == "WalletOpened")
    added = sorted(rows.keys() - then.keys())
    assert opened > 0 and "wallet_lifecycle" in added
    assert [rows[t][0] for t in added] == [opened if t == "wallet_lifecycle" else 0 for t in added]
