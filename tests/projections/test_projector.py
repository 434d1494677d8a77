"""Projections on embedded ClickHouse agree with the offline summary, exactly and once."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from support.clickhouse import everything

from engine.domain import AdjustRating, UsageRated, WriteOffDebt
from engine.offline.inputs import merged
from engine.offline.pipeline import Pipeline
from engine.projections.clickhouse import Client, ProjectionError, connect
from engine.projections.projector import Projector
from engine.projections.schema import COLUMNS, FACT_TABLES
from engine.store import open_store

from .conftest import Run


def scalar(client: Client, sql: str) -> Any:
    return client.query(sql).result_rows[0][0]


@pytest.fixture
def projected(client: Client, run: Run) -> Projector:
    projector = Projector(client, run.catalog)
    store = open_store(run.store_url)
    try:
        projector.rebuild(store)
    finally:
        store.close()
    return projector


def test_inserted_columns_match_the_tables(client: Client) -> None:
    Projector(client).create()
    for table, columns in COLUMNS.items():
        described = [r[0] for r in client.query(f"DESCRIBE TABLE {table}").result_rows]
        assert [c for c in described if c != "day"] == list(columns)


def test_balances_revenue_and_usage_equal_the_summary(projected: Projector, run: Run) -> None:
    client = projected.client
    balances = dict(client.query("SELECT wallet, balance FROM wallet_balances").result_rows)
    assert run.summary.wallets
    for w in run.summary.wallets:
        assert balances.get(w.wallet_id, 0) == w.balance, w.wallet_id
    revenue = dict(
        client.query(
            "SELECT provider, sum(amount) FROM revenue_lines FINAL "
            "WHERE kind != 'breakage' GROUP BY provider"
        ).result_rows
    )
    assert revenue == run.summary.revenue
    breakage = scalar(client, "SELECT sum(amount) FROM revenue_lines FINAL WHERE kind='breakage'")
    assert breakage == run.summary.breakage > 0
    charges = dict(
        client.query(
            "SELECT kind, sum(amount) FROM revenue_lines FINAL "
            "WHERE kind != 'breakage' GROUP BY kind"
        ).result_rows
    )
    assert charges == {k: v for k, v in run.summary.charges.items() if k != "routed_usage"}
    assert scalar(client, "SELECT count() FROM usage_facts FINAL") == run.summary.rated
    daily = dict(
        client.query(
            "SELECT wallet, argMax(balance, day) FROM wallet_balances_daily GROUP BY wallet"
        ).result_rows
    )
    assert daily == balances


def test_pool_usage_and_allowance_equal_the_summary(projected: Projector, run: Run) -> None:
    rows = projected.client.query(
        "SELECT pool_id, kind, bucket, used, allowance FROM pool_status"
    ).result_rows
    expected = [(p.pool_id, p.kind, p.bucket, p.used, p.allowance) for p in run.summary.pools]
    assert run.summary.pools
    assert sorted(rows) == sorted(expected)


def test_suspensions_follow_the_events(projected: Projector, run: Run) -> None:
    counted = Counter(type(e).__name__ for e in run.events)
    rows = dict(
        projected.client.query(
            "SELECT action, count() FROM suspensions GROUP BY action"
        ).result_rows
    )
    assert rows.get("suspended", 0) == counted["WalletSuspended"] > 0
    assert rows.get("resumed", 0) == counted["WalletResumed"]
    status = dict(projected.client.query("SELECT wallet, status FROM wallet_status").result_rows)
    for w in run.summary.wallets:
        assert status.get(w.wallet_id, "resumed") == (
            "suspended" if w.status == "suspended" else "resumed"
        )


def test_a_batch_applied_twice_changes_nothing(projected: Projector, run: Run) -> None:
    before = everything(projected.client)
    raw = Counter({t: scalar(projected.client, f"SELECT count() FROM {t}") for t in FACT_TABLES})
    store = open_store(run.store_url)
    try:
        first = next(iter(store.read_all(0, 2000)))
        projected.apply(first)
        projected.apply(run.events[:500])
    finally:
        store.close()
    # The copies are there until a merge, and FINAL counts each event once.
    assert sum(scalar(projected.client, f"SELECT count() FROM {t}") for t in FACT_TABLES) > sum(
        raw.values()
    )
    assert everything(projected.client) == before


def test_rebuild_equals_incremental_projection(
    projected: Projector, run: Run, chdb_path: Any
) -> None:
    other = connect(f"chdb://{chdb_path}?database=incremental")
    try:
        incremental = Projector(other, run.catalog, batch=700)
        incremental.drop()
        store = open_store(run.store_url)
        try:
            incremental.create()
            batches = iter(store.read_all(0, 1500))
            incremental.apply(next(batches))
            incremental.apply(next(batches))
            assert incremental.position() == 3000
            applied = incremental.project(store)
            assert applied == store.position() - 3000
            assert incremental.project(store) == 0
            assert incremental.position() == projected.position() == store.position()
        finally:
            store.close()
        assert everything(other) == everything(projected.client)
    finally:
        other.close()


def decided(run: Run) -> tuple[Pipeline, list[Any]]:
    """The run's inputs decided again in process: the pipeline (with its states) and the
    events."""
    items, _ = merged_inputs(run)
    pipeline = Pipeline(run.catalog)
    events = []
    for item in items:
        result = pipeline.feed(item)
        if isinstance(result, list):
            events += result
    return pipeline, events


def test_adjustments_move_balances_revenue_and_usage(client: Client, run: Run) -> None:
    pipeline, events = decided(run)
    rated = [e for e in events if isinstance(e, UsageRated) and e.payer == e.wallet_id]
    at = datetime(2026, 12, 15, tzinfo=UTC)
    adjustments = []
    for n, (usage, delta) in enumerate(zip(rated[:40], [250, -180] * 20, strict=True)):
        command = AdjustRating(
            f"adj-{n}",
            usage.wallet_id,
            at,
            cdr_id=usage.cdr_id,
            iccid=usage.iccid,
            service=usage.service,
            zone=usage.zone,
            replay="r1",
            amount=delta,
            charged_volume=1024 if delta > 0 else -1024,
            plan_version=usage.plan_version,
            splits=(("telco-a", delta),),
        )
        result = pipeline.feed(command)
        assert isinstance(result, list)
        adjustments += result
    assert any(type(e).__name__ == "RatingAdjusted" for e in adjustments)
    projector = Projector(client, run.catalog)
    projector.create()
    projector.apply(events + adjustments)
    balances = dict(client.query("SELECT wallet, balance FROM wallet_balances").result_rows)
    for wallet_id, state in pipeline.states.items():
        assert balances.get(wallet_id, 0) == state.balance, wallet_id
    corrections = client.query(
        "SELECT count(), sum(amount) FROM usage_facts FINAL WHERE kind = 'adjustment'"
    ).result_rows[0]
    assert corrections == (40, 20 * 250 - 20 * 180)
    assert scalar(
        client, "SELECT sum(amount) FROM revenue_lines FINAL WHERE kind = 'adjustment'"
    ) == (20 * 250 - 20 * 180)


def test_a_write_off_raises_the_balance_and_shows_as_negative_revenue(
    client: Client, run: Run
) -> None:
    pipeline, events = decided(run)
    owing = sorted((s.debt, w) for w, s in pipeline.states.items() if s.debt > 0)
    assert owing, "the generated run leaves a wallet in debt"
    debt, wallet_id = owing[-1]
    at = datetime(2026, 12, 20, tzinfo=UTC)
    result = pipeline.feed(WriteOffDebt("wo-1", wallet_id, at, reason="insolvent"))
    assert isinstance(result, list)
    written = [e for e in result if type(e).__name__ == "DebtWrittenOff"]
    assert [e.amount for e in written] == [debt]  # type: ignore[attr-defined]
    projector = Projector(client, run.catalog)
    projector.create()
    projector.apply(events + result)
    balances = dict(client.query("SELECT wallet, balance FROM wallet_balances").result_rows)
    assert balances[wallet_id] == pipeline.states[wallet_id].balance
    lines = client.query(
        "SELECT provider, sum(amount) FROM revenue_lines FINAL "
        "WHERE kind = 'written_off' GROUP BY provider"
    ).result_rows
    assert lines == [("", -debt)]


def merged_inputs(run: Run) -> Any:
    from pathlib import Path

    directory = Path(run.store_url.removeprefix("sqlite:///")).parent
    return merged(directory / "cdrs.jsonl", directory / "cmds.jsonl")


def test_connect_rejects_unknown_urls() -> None:
    for url in ("mysql://x", "chdb://", "nonsense"):
        with pytest.raises(ProjectionError, match="ClickHouse URL"):
            connect(url)


def test_a_direct_rebuild_gives_the_rows_of_the_python_path(
    projected: Projector, run: Run, chdb_path: Any
) -> None:
    """``projected`` was rebuilt by ClickHouse reading the SQLite store itself; the same
    store inserted by Python as JSONEachRow gives the same rows, table by table."""
    store = open_store(run.store_url)
    other = connect(f"chdb://{chdb_path}?database=python_path")
    try:
        assert projected.direct_source(store) is not None
        python = Projector(other, run.catalog, batch=2_500)
        assert python.rebuild(store, direct=False) == store.position()
        assert python.position() == projected.position() == store.position()
        assert everything(other) == everything(projected.client)
        assert scalar(other, "SELECT count() FROM usage_facts FINAL") > 0
    finally:
        store.close()
        other.close()


def test_a_direct_rebuild_is_refused_where_clickhouse_cannot_read_the_store(
    client: Client, run: Run
) -> None:
    store = open_store("sqlite:///:memory:")
    try:
        projector = Projector(client, run.catalog)
        assert projector.direct_source(store) is None
        with pytest.raises(ProjectionError, match="cannot read this store directly"):
            projector.rebuild(store, direct=True)
    finally:
        store.close()
