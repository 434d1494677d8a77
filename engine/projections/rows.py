"""From events to table rows: a pure mapping, column by column, with no I/O.

``Rows`` collects the rows of a batch of events as columns (one list per column), which is
what a columnar insert wants. Which events give which rows:

- ``UsageRated``: a usage fact; a revenue line per split line; a pool draw per draw; a balance
  change when it moved this wallet's money (a routed usage moves the payer's, by ``Charged``).
- ``RatingAdjusted`` (a re-rating's correction): a usage fact of kind ``adjustment`` with the
  signed differences; revenue lines of kind ``adjustment``; a balance change of
  ``credit - (debits + overdraft)``.
- ``Charged``: revenue lines of its kind (none for ``routed_usage``) and a balance change.
- ``WalletOpened``, ``GrantAdded``: a balance change (credit). ``GrantExpired``: a balance
  change and a breakage revenue line (provider ``''``: breakage is not split).
- ``PoolStepped``: a pool step. ``WalletSuspended`` / ``WalletResumed``: a suspension row.
- The others (thresholds, network actions, SIM moves, rejections) give no rows.

Every row carries its event's id, so a row delivered twice is recognised (see ``schema``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from ..domain import Catalog, Event, initial_state
from ..domain.cycles import cycle_of
from ..domain.events import (
    Charged,
    GrantAdded,
    GrantExpired,
    PoolStepped,
    RatingAdjusted,
    UsageRated,
    WalletOpened,
    WalletResumed,
    WalletSuspended,
)
from ..domain.pools import allowance
from ..domain.sims import pool_sims

COLUMNS: dict[str, tuple[str, ...]] = {
    "usage_facts": (
        "event_id",
        "kind",
        "at",
        "wallet",
        "payer",
        "cdr_id",
        "iccid",
        "zone",
        "service",
        "volume",
        "rated_volume",
        "pooled_volume",
        "charged_volume",
        "amount",
        "plan",
        "plan_version",
        "cycle",
        "filter",
        "replay",
    ),
    "balance_changes": (
        "event_id",
        "type",
        "kind",
        "at",
        "wallet",
        "delta",
        "credited",
        "debited",
        "expired",
        "uncollected",
    ),
    "revenue_lines": (
        "event_id",
        "line",
        "at",
        "wallet",
        "provider",
        "kind",
        "zone",
        "service",
        "amount",
    ),
    "pool_draws": (
        "event_id",
        "line",
        "at",
        "wallet",
        "pool_id",
        "bucket",
        "zone",
        "service",
        "volume",
    ),
    "pool_steps": ("event_id", "at", "wallet", "pool_id", "cycle", "tier", "size"),
    "suspensions": ("event_id", "at", "wallet", "action", "balance"),
}
"""The inserted columns of each fact table (``day`` is computed by ClickHouse)."""

CATALOG_COLUMNS: dict[str, tuple[str, ...]] = {
    "providers": ("provider", "name"),
    "zones": ("zone", "name", "networks"),
    "wallets": (
        "wallet",
        "name",
        "currency",
        "overdraft_limit",
        "suspend_at",
        "resume_at",
        "cycle_anchor_day",
    ),
    "pools": ("pool_id", "wallet", "kind", "service", "zones"),
    "pool_allowances": ("pool_id", "bucket", "allowance"),
}


def epoch_ms(at: datetime) -> int:
    """The instant as integer milliseconds since the epoch (what a DateTime64(3) stores)."""
    return round(at.timestamp() * 1000)


class Rows:
    """The rows of a batch of events, as columns per table."""

    def __init__(self) -> None:
        self.columns: dict[str, list[list[Any]]] = {
            table: [[] for _ in cols] for table, cols in COLUMNS.items()
        }
        self.events = 0

    def add(self, events: Iterable[Event]) -> None:
        handlers = _HANDLERS
        for e in events:
            self.events += 1
            handler = handlers.get(type(e).__name__)
            if handler is not None:
                handler(self, e)

    def count(self, table: str) -> int:
        return len(self.columns[table][0])

    def rows(self, table: str) -> list[dict[str, Any]]:
        """One table's rows as dicts (for tests and debugging)."""
        names = COLUMNS[table]
        table_rows = zip(*self.columns[table], strict=True)
        return [dict(zip(names, values, strict=True)) for values in table_rows]

    def pool_buckets(self) -> set[tuple[str, str]]:
        """Every (pool, bucket) drawn from in this batch."""
        cols = self.columns["pool_draws"]
        return set(zip(cols[4], cols[5], strict=True))

    # Each method appends one row to one table; arguments in COLUMNS order.

    def _usage(self, *row: Any) -> None:
        for col, value in zip(self.columns["usage_facts"], row, strict=True):
            col.append(value)

    def _balance(
        self,
        e: Event,
        kind: str,
        at: int,
        credited: int = 0,
        debited: int = 0,
        expired: int = 0,
        uncollected: int = 0,
    ) -> None:
        c = self.columns["balance_changes"]
        c[0].append(e.id)
        c[1].append(type(e).__name__)
        c[2].append(kind)
        c[3].append(at)
        c[4].append(e.wallet_id)
        c[5].append(credited - debited - expired)
        c[6].append(credited)
        c[7].append(debited)
        c[8].append(expired)
        c[9].append(uncollected)

    def _revenue(
        self, e: Event, at: int, kind: str, zone: str, service: str, splits: Iterable[Any]
    ) -> None:
        c = self.columns["revenue_lines"]
        for n, line in enumerate(splits):
            c[0].append(e.id)
            c[1].append(n)
            c[2].append(at)
            c[3].append(e.wallet_id)
            c[4].append(line.provider)
            c[5].append(kind)
            c[6].append(zone)
            c[7].append(service)
            c[8].append(line.amount)


def _usage_rated(rows: Rows, e: UsageRated) -> None:
    at = epoch_ms(e.at)
    rows._usage(
        e.id,
        "rated",
        at,
        e.wallet_id,
        e.payer,
        e.cdr_id,
        e.iccid,
        e.zone,
        e.service,
        e.volume,
        e.rated_volume,
        e.pooled_volume,
        e.charged_volume,
        e.amount,
        e.plan,
        e.plan_version,
        e.cycle,
        e.filter or "",
        "",
    )
    if e.splits:
        rows._revenue(e, at, "usage", e.zone, e.service, e.splits)
    if e.draws:
        c = rows.columns["pool_draws"]
        for n, d in enumerate(e.draws):
            c[0].append(e.id)
            c[1].append(n)
            c[2].append(at)
            c[3].append(e.wallet_id)
            c[4].append(d.pool_id)
            c[5].append(d.bucket)
            c[6].append(e.zone)
            c[7].append(e.service)
            c[8].append(d.volume)
    debited = e.overdraft
    for debit in e.debits:
        debited += debit.amount
    if debited or e.uncollected:
        rows._balance(e, "usage", at, debited=debited, uncollected=e.uncollected)


def _rating_adjusted(rows: Rows, e: RatingAdjusted) -> None:
    at = epoch_ms(e.at)
    rows._usage(
        e.id,
        "adjustment",
        at,
        e.source_wallet or e.wallet_id,
        e.wallet_id,
        e.cdr_id,
        e.iccid,
        e.zone,
        e.service,
        0,
        0,
        0,
        e.charged_volume,
        e.amount,
        "",
        e.plan_version,
        "",
        "",
        e.replay,
    )
    if e.splits:
        rows._revenue(e, at, "adjustment", e.zone, e.service, e.splits)
    debited = e.overdraft + sum(d.amount for d in e.debits)
    credited = e.credit.amount if e.credit is not None else 0
    if debited or credited or e.uncollected:
        rows._balance(
            e, "adjustment", at, credited=credited, debited=debited, uncollected=e.uncollected
        )


def _charged(rows: Rows, e: Charged) -> None:
    at = epoch_ms(e.at)
    if e.splits:
        rows._revenue(e, at, e.kind, "", "", e.splits)
    debited = e.overdraft + sum(d.amount for d in e.debits)
    if debited or e.uncollected:
        rows._balance(e, e.kind, at, debited=debited, uncollected=e.uncollected)


def _wallet_opened(rows: Rows, e: WalletOpened) -> None:
    if e.grants:
        rows._balance(e, "opening", epoch_ms(e.at), credited=sum(g.amount for g in e.grants))


def _grant_added(rows: Rows, e: GrantAdded) -> None:
    rows._balance(e, e.grant.kind, epoch_ms(e.at), credited=e.grant.amount)


def _grant_expired(rows: Rows, e: GrantExpired) -> None:
    at = epoch_ms(e.at)
    rows._balance(e, "expired", at, expired=e.amount)
    c = rows.columns["revenue_lines"]
    row = (e.id, 0, at, e.wallet_id, "", "breakage", "", "", e.amount)
    for col, value in zip(c, row, strict=True):
        col.append(value)


def _pool_stepped(rows: Rows, e: PoolStepped) -> None:
    c = rows.columns["pool_steps"]
    row = (e.id, epoch_ms(e.at), e.wallet_id, e.pool_id, e.cycle, e.tier, e.size)
    for col, value in zip(c, row, strict=True):
        col.append(value)


def _suspension(rows: Rows, e: WalletSuspended | WalletResumed) -> None:
    action = "suspended" if isinstance(e, WalletSuspended) else "resumed"
    c = rows.columns["suspensions"]
    for col, value in zip(c, (e.id, epoch_ms(e.at), e.wallet_id, action, e.balance), strict=True):
        col.append(value)


# Keyed by type name, so an event type added to the domain later needs only its handler.
_HANDLERS: dict[str, Callable[[Rows, Any], None]] = {
    "UsageRated": _usage_rated,
    "RatingAdjusted": _rating_adjusted,
    "Charged": _charged,
    "WalletOpened": _wallet_opened,
    "GrantAdded": _grant_added,
    "GrantExpired": _grant_expired,
    "PoolStepped": _pool_stepped,
    "WalletSuspended": _suspension,
    "WalletResumed": _suspension,
}


def catalog_rows(catalog: Catalog) -> dict[str, list[tuple[Any, ...]]]:
    """The catalog's dimension tables (all but ``pool_allowances``), as row tuples."""
    return {
        "providers": [(p.id, p.name) for p in catalog.providers.values()],
        "zones": [(z.id, z.name, list(z.networks)) for z in catalog.zones.values()],
        "wallets": [
            (
                w.id,
                w.name,
                w.currency,
                w.overdraft_limit,
                w.suspend_at,
                w.resume_at,
                w.cycle_anchor_day,
            )
            for w in catalog.wallets.values()
        ],
        "pools": [
            (p.id, p.wallet, p.kind, p.service, list(p.zones)) for p in catalog.pools.values()
        ],
    }


def allowance_rows(
    catalog: Catalog, buckets: Iterable[tuple[str, str]]
) -> list[tuple[str, str, int]]:
    """The allowance of each (pool, bucket) as the catalog sets it: a stacked pool's bundle
    size; a static pool's allowance; a flexible pool's per-SIM allowance times the catalog's
    SIMs of the pool active in the cycle; an adaptive pool's first tier (its steps are in
    ``pool_steps``). Unknown pools and bundles are left out."""
    out = []
    for pool_id, bucket in sorted(buckets):
        pool = catalog.pools.get(pool_id)
        if pool is None:
            continue
        if pool.kind == "stacked":
            size = next((b.size for b in pool.bundles if b.id == bucket), None)
            if size is not None:
                out.append((pool_id, bucket, size))
            continue
        try:
            start = datetime.fromisoformat(bucket).replace(tzinfo=UTC)
        except ValueError:
            continue
        wallet = catalog.wallets.get(pool.wallet)
        cycle = cycle_of(int(start.timestamp()), wallet.cycle_anchor_day if wallet else 1)
        state = initial_state(pool.wallet)
        members = pool_sims(state, catalog, pool, cycle) if pool.kind == "flexible" else 0
        out.append((pool_id, bucket, allowance(pool, state, cycle, members)))
    return out
