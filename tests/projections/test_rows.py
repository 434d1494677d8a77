"""Which rows each event gives: given an event, then these rows (mapped by ClickHouse)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from engine.domain import Event
from engine.domain.events import (
    CatalogAdopted,
    Charged,
    Debit,
    GrantAdded,
    GrantExpired,
    GrantInfo,
    PoolDraw,
    PoolStepped,
    RatingAdjusted,
    SimsBarred,
    SplitLine,
    ThresholdCrossed,
    UsageRated,
    WalletClosed,
    WalletHeld,
    WalletOpened,
    WalletReleased,
    WalletResumed,
    WalletSuspended,
    WalletTerms,
)
from engine.projections.clickhouse import Client
from engine.projections.projector import Projector
from engine.projections.rows import allowance_rows, catalog_rows
from engine.projections.schema import COLUMNS

AT = datetime(2026, 9, 10, 12, 0, tzinfo=UTC)
MS = round(AT.timestamp() * 1000)


class Rows:
    """The rows ``events`` gave, per fact table, in the order of the events (then lines);
    ``at`` as epoch milliseconds."""

    def __init__(self, client: Client, events: list[Event]) -> None:
        projector = Projector(client)
        projector.create()
        self.client = client
        self.events = projector.apply(events)
        self.order = {e.id: n for n, e in enumerate(events)}

    def rows(self, table: str) -> list[dict[str, Any]]:
        columns = COLUMNS[table]
        select = ", ".join("toUnixTimestamp64Milli(at)" if c == "at" else c for c in columns)
        found = self.client.query(f"SELECT {select} FROM {table} FINAL").result_rows
        rows = [dict(zip(columns, r, strict=True)) for r in found]
        return sorted(rows, key=lambda r: (self.order[r["event_id"]], r.get("line", 0)))

    def count(self, table: str) -> int:
        return len(self.rows(table))


def rows_of(client: Client, *events: Event) -> Rows:
    return Rows(client, list(events))


def only(rows: Rows, table: str) -> dict[str, object]:
    found = rows.rows(table)
    assert len(found) == 1, found
    return found[0]


def tables_with_rows(rows: Rows) -> set[str]:
    return {t for t in COLUMNS if rows.count(t)}


def usage(**changes: object) -> UsageRated:
    fields: dict[str, object] = {
        "id": "cdr:s/1#1",
        "wallet_id": "acme",
        "at": AT,
        "cdr_id": "1",
        "iccid": "8944",
        "service": "data",
        "zone": "EU",
        "volume": 1000,
        "rated_volume": 1024,
        "pooled_volume": 24,
        "charged_volume": 1000,
        "amount": 300,
        "plan": "iot-eu",
        "plan_version": 2,
        "cycle": "2026-09-01",
        "payer": "acme",
        "draws": (PoolDraw("p1", "2026-09-01", 24),),
        "debits": (Debit("g1", 250),),
        "overdraft": 40,
        "uncollected": 10,
        "splits": (SplitLine("telco", 200), SplitLine("platform", 100)),
    }
    fields.update(changes)
    return UsageRated(**fields)  # type: ignore[arg-type]


def test_usage_rated_gives_a_fact_revenue_lines_draws_and_a_debit(client: Client) -> None:
    rows = rows_of(client, usage(filter="night"))
    fact = only(rows, "usage_facts")
    assert fact == {
        "event_id": "cdr:s/1#1",
        "kind": "rated",
        "at": MS,
        "wallet": "acme",
        "payer": "acme",
        "cdr_id": "1",
        "iccid": "8944",
        "zone": "EU",
        "service": "data",
        "volume": 1000,
        "rated_volume": 1024,
        "pooled_volume": 24,
        "charged_volume": 1000,
        "amount": 300,
        "plan": "iot-eu",
        "plan_version": 2,
        "cycle": "2026-09-01",
        "filter": "night",
        "replay": "",
    }
    lines = rows.rows("revenue_lines")
    assert [(r["line"], r["provider"], r["amount"], r["kind"], r["zone"]) for r in lines] == [
        (0, "telco", 200, "usage", "EU"),
        (1, "platform", 100, "usage", "EU"),
    ]
    draw = only(rows, "pool_draws")
    assert (draw["pool_id"], draw["bucket"], draw["volume"], draw["zone"]) == (
        "p1",
        "2026-09-01",
        24,
        "EU",
    )
    change = only(rows, "balance_changes")
    assert (change["kind"], change["debited"], change["delta"], change["uncollected"]) == (
        "usage",
        290,
        -290,
        10,
    )


def test_routed_usage_moves_no_money_where_it_was_rated(client: Client) -> None:
    rows = rows_of(client, usage(payer="globex", debits=(), overdraft=0, uncollected=0))
    assert only(rows, "usage_facts")["payer"] == "globex"
    assert rows.count("balance_changes") == 0
    assert rows.count("revenue_lines") == 2


def test_charged_gives_revenue_of_its_kind_and_a_debit(client: Client) -> None:
    mrc = Charged(
        "tick:1#2",
        "acme",
        AT,
        "mrc",
        "8944",
        500,
        "2026-09-01",
        debits=(Debit("g1", 500),),
        splits=(SplitLine("platform", 500),),
    )
    rows = rows_of(client, mrc)
    assert tables_with_rows(rows) == {"revenue_lines", "balance_changes"}
    assert only(rows, "revenue_lines")["kind"] == "mrc"
    assert only(rows, "balance_changes")["delta"] == -500


def test_routed_charge_moves_money_without_revenue(client: Client) -> None:
    routed = Charged("cmd:r#1", "globex", AT, "routed_usage", "x", 300, debits=(Debit("g", 300),))
    rows = rows_of(client, routed)
    assert tables_with_rows(rows) == {"balance_changes"}
    assert only(rows, "balance_changes")["kind"] == "routed_usage"


def test_credits_expiry_and_breakage(client: Client) -> None:
    opened = WalletOpened("o#1", "acme", AT, "EUR", 30, (GrantInfo("g1", "opening", 1000, 40),))
    added = GrantAdded("cmd:t#1", "acme", AT, GrantInfo("g2", "voucher", 250, 20), voucher="V")
    expired = GrantExpired("tick:2#1", "acme", AT, "g2", 70)
    rows = rows_of(client, opened, added, expired)
    changes = rows.rows("balance_changes")
    assert [(c["type"], c["kind"], c["delta"]) for c in changes] == [
        ("WalletOpened", "opening", 1000),
        ("GrantAdded", "voucher", 250),
        ("GrantExpired", "expired", -70),
    ]
    breakage = only(rows, "revenue_lines")
    assert (breakage["kind"], breakage["provider"], breakage["amount"]) == ("breakage", "", 70)


def test_an_opening_without_grants_moves_nothing(client: Client) -> None:
    assert rows_of(client, WalletOpened("o#1", "acme", AT, "EUR", 30)).count("balance_changes") == 0


def test_positive_adjustment_is_a_correction_with_a_debit(client: Client) -> None:
    adjusted = RatingAdjusted(
        "cmd:adj#2",
        "globex",
        AT,
        "1",
        "8944",
        "data",
        "EU",
        "replay-7",
        120,
        2048,
        3,
        (SplitLine("telco", 150), SplitLine("platform", -30)),
        source_wallet="acme",
        debits=(Debit("g1", 100),),
        overdraft=20,
    )
    rows = rows_of(client, adjusted)
    fact = only(rows, "usage_facts")
    assert (fact["kind"], fact["wallet"], fact["payer"], fact["amount"]) == (
        "adjustment",
        "acme",
        "globex",
        120,
    )
    assert (fact["charged_volume"], fact["volume"], fact["replay"]) == (2048, 0, "replay-7")
    lines = rows.rows("revenue_lines")
    assert [(r["provider"], r["amount"], r["kind"]) for r in lines] == [
        ("telco", 150, "adjustment"),
        ("platform", -30, "adjustment"),
    ]
    change = only(rows, "balance_changes")
    assert (change["wallet"], change["delta"], change["debited"]) == ("globex", -120, 120)


def test_negative_adjustment_credits_a_refund(client: Client) -> None:
    refund = GrantInfo("cmd:adj#1", "refund", 80, 30)
    adjusted = RatingAdjusted(
        "cmd:adj#2",
        "acme",
        AT,
        "1",
        "8944",
        "data",
        "EU",
        "replay-7",
        -80,
        -1024,
        3,
        (SplitLine("telco", -80),),
        credit=refund,
    )
    rows = rows_of(client, adjusted)
    change = only(rows, "balance_changes")
    assert (change["kind"], change["credited"], change["delta"]) == ("adjustment", 80, 80)
    assert only(rows, "usage_facts")["amount"] == -80
    assert only(rows, "revenue_lines")["amount"] == -80


def test_steps_and_suspensions(client: Client) -> None:
    rows = rows_of(
        client,
        PoolStepped("c#2", "acme", AT, "ad", "2026-09-01", 1, 5000),
        WalletSuspended("c#3", "acme", AT, -100),
        SimsBarred("c#4", "acme", AT, ("8944",)),
        WalletResumed("t#1", "acme", AT, 900),
    )
    assert only(rows, "pool_steps")["size"] == 5000
    assert [(r["action"], r["balance"]) for r in rows.rows("suspensions")] == [
        ("suspended", -100),
        ("resumed", 900),
    ]


def test_wallet_lifecycle_opening_terms_hold_and_revision(client: Client) -> None:
    terms = WalletTerms("Nine", "USD", 5, -2, 1, (10, 1), 15)
    later = AT + timedelta(seconds=1)
    rows = rows_of(
        client,
        WalletOpened("open:w9#0", "w9", AT, "USD", 60, (), terms, 3),
        WalletOpened("open:acme#0", "acme", AT, "EUR", 60),
        WalletHeld("s#1", "w9", AT, "fraud check"),
        WalletReleased("r#1", "w9", later, "cleared"),
        WalletHeld("s#2", "acme", AT, "dispute"),
        CatalogAdopted("a#1", "w9", later, 4, "d" * 64),
        WalletClosed("x#1", "acme", later, "contract ended"),
    )
    found = rows.rows("wallet_lifecycle")
    assert [(r["wallet"], r["action"]) for r in found] == [
        ("w9", "opened"),
        ("acme", "opened"),
        ("w9", "held"),
        ("w9", "released"),
        ("acme", "held"),
        ("w9", "adopted"),
        ("acme", "closed"),
    ]
    nine, acme = found[0], found[1]
    assert (nine["currency"], nine["by_command"], nine["name"], nine["revision"]) == (
        "USD",
        1,
        "Nine",
        3,
    )
    assert (nine["overdraft_limit"], nine["suspend_at"], nine["resume_at"]) == (5, -2, 1)
    assert (nine["thresholds"], nine["cycle_anchor_day"]) == ([10, 1], 15)
    assert (acme["currency"], acme["by_command"], acme["name"]) == ("EUR", 0, "")
    assert (found[5]["revision"], found[5]["digest"]) == (4, "d" * 64)
    assert found[6]["reason"] == "contract ended"
    status = client.query(
        "SELECT wallet, currency, by_command, closed, held, revision "
        "FROM wallet_lifecycle_status ORDER BY wallet"
    ).result_rows
    assert [tuple(r) for r in status] == [
        ("acme", "EUR", 0, True, True, 0),
        ("w9", "USD", 1, False, False, 4),
    ]


def test_events_without_rows(client: Client) -> None:
    rows = rows_of(
        client, ThresholdCrossed("c#5", "acme", AT, 1000, 900), SimsBarred("b", "acme", AT, ())
    )
    assert tables_with_rows(rows) == set()
    assert rows.events == 2


def test_catalog_dimensions_and_allowances(catalog: object) -> None:
    from engine.domain import Catalog

    assert isinstance(catalog, Catalog)
    dims = catalog_rows(catalog)
    assert {r[0] for r in dims["providers"]} == set(catalog.providers)
    assert {r[0] for r in dims["pools"]} == set(catalog.pools)
    buckets = []
    for pool in catalog.pools.values():
        if pool.kind == "stacked":
            buckets += [(pool.id, b.id) for b in pool.bundles]
        else:
            buckets.append((pool.id, "2026-09-01"))
    found = {(p, b): size for p, b, size in allowance_rows(catalog, buckets)}
    for pool in catalog.pools.values():
        if pool.kind == "static":
            assert found[pool.id, "2026-09-01"] == pool.allowance
        elif pool.kind == "adaptive":
            assert found[pool.id, "2026-09-01"] == pool.tiers[0].size
        elif pool.kind == "stacked":
            assert all(found[pool.id, b.id] == b.size for b in pool.bundles)
    assert allowance_rows(catalog, [("no-such-pool", "2026-09-01")]) == []


def test_an_instant_is_kept_in_utc_to_the_millisecond(client: Client) -> None:
    at = datetime(2026, 8, 31, 19, 0, 33, 123456, tzinfo=timezone(timedelta(hours=-5)))
    rows = rows_of(client, GrantExpired("tick:9#1", "acme", at, "g1", 5))
    assert only(rows, "balance_changes")["at"] == round(at.timestamp() * 1000)
    day = client.query("SELECT day FROM balance_changes").result_rows[0][0]
    assert day == at.astimezone(UTC).date()
