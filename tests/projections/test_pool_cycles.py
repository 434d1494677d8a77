"""A pool's closed cycle and its true-up, in the projections: the cycle's row, the volume
moved into the pool, the credit in the balance and the revenue given back."""

from __future__ import annotations

from domain.builders import (
    MB,
    SIM2,
    T0,
    Wallets,
    attach,
    catalog,
    cdr,
    flexible_pool,
    plan,
    rate,
    sub,
    tick,
    ts,
)

from engine.projections.clickhouse import Client
from engine.projections.projector import Projector


def test_a_true_up_shows_in_pool_cycles_balances_draws_and_revenue(client: Client) -> None:
    eur_per_mb = plan(rates={"data": {"EU": rate("1", MB)}})
    cat = catalog(plans=[eur_per_mb], pools=[flexible_pool(per_sim=5 * MB)], subs=[sub(pool="p1")])
    run = Wallets(cat).given(
        cdr("c1", 8 * MB, at=T0),  # 5 MB pooled, 3 MB (3.00 EUR) of overage
        attach("a1", SIM2, at=ts("2026-01-12T00:00:00Z"), pool="p1"),
        tick("t1", ts("2026-02-01T00:00:00Z")),  # 10 MB at the close: all 3 MB come back
    )
    projector = Projector(client, cat)
    projector.create()
    projector.apply(run.history)
    rows = client.query(
        "SELECT pool_id, kind, cycle, allowance, used, overage, credited_volume, credited "
        "FROM pool_cycles FINAL"
    ).result_rows
    assert rows == [("p1", "flexible", "2026-01-01", 10 * MB, 8 * MB, 0, 3 * MB, 3_000_000)]
    balance = client.query("SELECT balance FROM wallet_balances").result_rows[0][0]
    assert balance == run.balance == 100_000_000
    used = client.query("SELECT sum(volume) FROM pool_draws FINAL").result_rows[0][0]
    assert used == run.state.pool_used[("p1", "2026-01-01")] == 8 * MB
    given_back = client.query(
        "SELECT provider, amount FROM revenue_lines FINAL WHERE kind = 'pool_true_up' "
        "ORDER BY provider"
    ).result_rows
    assert given_back == [("op", -2_100_000), ("platform", -600_000), ("reseller", -300_000)]
    status = client.query(
        "SELECT allowance, used, remaining, closed, credited FROM pool_status_closed"
    ).result_rows
    assert status == [(10 * MB, 8 * MB, 2 * MB, 1, 3_000_000)]
