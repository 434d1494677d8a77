"""What a rating run produced: balances, pools, revenue and counts, reconciled to the micro-unit."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import msgspec
from immutables import Map
from msgspec.structs import replace

from ..domain import Catalog, Event, WalletState, format_money
from ..domain.cycles import cycle_of
from ..domain.events import (
    Charged,
    DebtWrittenOff,
    GrantAdded,
    GrantExpired,
    PoolCycleClosed,
    PoolStepped,
    RatingAdjusted,
    UsageRated,
    WalletOpened,
)
from ..domain.membership import pool_allowance
from ..domain.pools import PoolFigures, allowance, drawn, stepped, trued_up
from ..domain.state import EMPTY


class Totals:
    """Running totals over the events of a run (what a projection would hold)."""

    def __init__(self) -> None:
        self.events: Counter[str] = Counter()
        self.revenue: Counter[str] = Counter()
        self.charges: Counter[str] = Counter()
        self.credited: Counter[str] = Counter()
        self.debited: Counter[str] = Counter()
        self.expired: Counter[str] = Counter()
        self.uncollected: Counter[str] = Counter()
        self.written_off: Counter[str] = Counter()
        # Each wallet's pool figures, counted as evolve counts them (domain/pools.py), kept
        # here too because the state forgets those of cycles long closed (domain/retention.py)
        # and the report lists them.
        self.pool_used: dict[str, PoolFigures] = {}
        self.pool_tier: dict[str, PoolFigures] = {}

    def observe(self, e: Event) -> None:
        self.events[type(e).__name__] += 1
        self._observe_pools(e)
        if isinstance(e, UsageRated | Charged):
            # A charge counts once, where it was rated; a routed debit only moves money.
            kind = "usage" if isinstance(e, UsageRated) else e.kind
            if kind != "routed_usage":
                self.charges[kind] += e.amount
            self.debited[e.wallet_id] += sum(d.amount for d in e.debits) + e.overdraft
            self.uncollected[e.wallet_id] += e.uncollected
            for line in e.splits:
                self.revenue[line.provider] += line.amount
        elif isinstance(e, GrantAdded):
            self.credited[e.wallet_id] += e.grant.amount
        elif isinstance(e, WalletOpened):
            self.credited[e.wallet_id] += sum(g.amount for g in e.grants)
        elif isinstance(e, GrantExpired):
            self.expired[e.wallet_id] += e.amount
        elif isinstance(e, RatingAdjusted):
            self.charges["adjustment"] += e.amount
            self.debited[e.wallet_id] += sum(d.amount for d in e.debits) + e.overdraft
            self.uncollected[e.wallet_id] += e.uncollected
            if e.credit is not None:
                self.credited[e.wallet_id] += e.credit.amount
            for line in e.splits:
                self.revenue[line.provider] += line.amount
        elif isinstance(e, DebtWrittenOff):
            self.written_off[e.wallet_id] += e.amount
        elif isinstance(e, PoolCycleClosed) and e.credit is not None:
            # A true-up gives back part of the usage charged: a negative charge.
            self.charges["pool_true_up"] -= e.credit.amount
            self.credited[e.wallet_id] += e.credit.amount
            for line in e.splits:
                self.revenue[line.provider] += line.amount

    def _observe_pools(self, e: Event) -> None:
        w = e.wallet_id
        if isinstance(e, UsageRated) and e.draws:
            self.pool_used[w] = drawn(self.pool_used.get(w, EMPTY), e.draws)
        elif isinstance(e, PoolCycleClosed):
            self.pool_used[w] = trued_up(self.pool_used.get(w, EMPTY), e)
        elif isinstance(e, PoolStepped):
            self.pool_tier[w] = stepped(self.pool_tier.get(w, EMPTY), e)

    def pools_of(self, state: WalletState) -> WalletState:
        """``state`` with the pool figures it forgot put back from the run's events."""
        used = self.pool_used.get(state.wallet_id, EMPTY)
        tiers = self.pool_tier.get(state.wallet_id, EMPTY)
        lost_used = {k: v for k, v in used.items() if k not in state.pool_used}
        lost_tiers = {k: v for k, v in tiers.items() if k not in state.pool_tier}
        if not lost_used and not lost_tiers:
            return state
        return replace(
            state,
            pool_used=Map({**lost_used, **state.pool_used}),
            pool_tier=Map({**lost_tiers, **state.pool_tier}),
        )


class GrantRow(msgspec.Struct):
    id: str
    kind: str
    remaining: int
    remaining_text: str
    priority: int
    expires_at: str | None


class WalletRow(msgspec.Struct):
    wallet_id: str
    currency: str
    balance: int
    balance_text: str
    status: str
    overdraft_used: int
    uncollected: int
    grants: list[GrantRow]
    reconciled: bool
    """opening + credits - debits - expired == balance, to the micro-unit."""


class PoolRow(msgspec.Struct):
    pool_id: str
    kind: str
    bucket: str
    used: int
    allowance: int


class Summary(msgspec.Struct):
    inputs: int
    rated: int
    rejected: dict[str, int]
    events: dict[str, int]
    wallets: list[WalletRow]
    pools: list[PoolRow]
    revenue: dict[str, int]
    charges: dict[str, int]
    breakage: int
    """Unused remainders of expired grants (GrantExpired)."""
    balanced: bool
    """Every wallet reconciles and revenue lines sum to the charges."""
    written_off: int = 0
    """Debt forgiven by ``WriteOffDebt`` commands (DebtWrittenOff): charged, never collected."""


def _iso(ts: int | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def summarize(
    catalog: Catalog,
    states: dict[str, WalletState],
    totals: Totals,
    inputs: int,
    rated: int,
    rejected: Counter[str],
) -> Summary:
    wallets = [_wallet_row(catalog, w, states[w], totals) for w in sorted(states)]
    pools = [
        row for w in sorted(states) for row in _pool_rows(catalog, w, totals.pools_of(states[w]))
    ]
    revenue_total = sum(totals.revenue.values())
    balanced = all(w.reconciled for w in wallets) and revenue_total == sum(totals.charges.values())
    return Summary(
        inputs,
        rated,
        dict(sorted(rejected.items())),
        dict(sorted(totals.events.items())),
        wallets,
        pools,
        dict(sorted(totals.revenue.items())),
        dict(sorted(totals.charges.items())),
        sum(totals.expired.values()),
        balanced,
        sum(totals.written_off.values()),
    )


def _wallet_row(catalog: Catalog, wallet_id: str, s: WalletState, totals: Totals) -> WalletRow:
    """The wallet's state, and whether its balance is what its money movements add up to."""
    w = catalog.wallets.get(wallet_id) or s.terms  # a wallet opened by command: its terms
    expected = (
        totals.credited[wallet_id]
        - totals.debited[wallet_id]
        - totals.expired[wallet_id]
        + totals.written_off[wallet_id]
    )
    grants = [
        GrantRow(
            g.id, g.kind, g.remaining, format_money(g.remaining), g.priority, _iso(g.expires_at)
        )
        for g in s.grants
    ]
    return WalletRow(
        wallet_id,
        w.currency if w else "?",
        s.balance,
        format_money(s.balance),
        "closed" if s.closed else "suspended" if s.suspended else "active",
        s.debt,
        s.uncollected,
        grants,
        expected == s.balance,
    )


def _pool_rows(catalog: Catalog, wallet_id: str, s: WalletState) -> list[PoolRow]:
    """Each pool bucket the wallet used: a cycle's allowance, or a stacked bundle's size."""
    w = catalog.wallets.get(wallet_id) or s.terms
    anchor = w.cycle_anchor_day if w is not None else 1
    rows = []
    for (pool_id, bucket), used in sorted(s.pool_used.items()):
        pool = catalog.pools.get(pool_id)
        if pool is None:
            continue
        if pool.kind == "stacked":
            size = next((b.size for b in pool.bundles if b.id == bucket), 0)
        else:
            start = datetime.fromisoformat(bucket).replace(tzinfo=UTC)
            cycle = cycle_of(int(start.timestamp()), anchor)
            size = allowance(pool, s, cycle, pool_allowance(s, catalog, pool, cycle, cycle.end))
        rows.append(PoolRow(pool_id, pool.kind, bucket, used, size))
    return rows


def _size(service: str, volume: int) -> str:
    if service == "data":
        return f"{volume / 1024**2:,.1f} MB"
    return f"{volume:,}"


def render(summary: Summary, catalog: Catalog) -> str:
    """The summary as the plain-text report ``rating-engine rate`` prints."""
    out: list[str] = []
    rejected = sum(summary.rejected.values())
    out.append(f"inputs {summary.inputs:,}   rated CDRs {summary.rated:,}   rejected {rejected:,}")
    for reason, n in summary.rejected.items():
        out.append(f"  rejected {reason:<24} {n:>10,}")
    out.append("")
    out.append(
        f"{'wallet':<16} {'balance':>18} {'status':<10} {'overdraft':>10} "
        f"{'uncollected':>12} {'grants':>6}"
    )
    for w in summary.wallets:
        out.append(
            f"{w.wallet_id:<16} {w.balance_text + ' ' + w.currency:>18} {w.status:<10} "
            f"{format_money(w.overdraft_used):>10} {format_money(w.uncollected):>12} "
            f"{len(w.grants):>6}"
        )
        for g in w.grants:
            expiry = f" expires {g.expires_at}" if g.expires_at else ""
            out.append(f"    {g.kind:<10} {g.remaining_text:>12}  prio {g.priority}{expiry}")
    if summary.pools:
        out.append("")
        out.append(f"{'pool':<16} {'kind':<9} {'cycle/bundle':<12} {'used':>14} {'allowance':>14}")
        for p in summary.pools:
            service = catalog.pools[p.pool_id].service if p.pool_id in catalog.pools else "data"
            out.append(
                f"{p.pool_id:<16} {p.kind:<9} {p.bucket:<12} {_size(service, p.used):>14} "
                f"{_size(service, p.allowance):>14}"
            )
    out.append("")
    out.append("revenue by provider")
    for provider, amount in summary.revenue.items():
        out.append(f"  {provider:<20} {format_money(amount):>16}")
    out.append("charges by kind")
    for kind, amount in summary.charges.items():
        out.append(f"  {kind:<20} {format_money(amount):>16}")
    out.append(f"  {'breakage (expired)':<20} {format_money(summary.breakage):>16}")
    if summary.written_off:
        out.append(f"  {'debt written off':<20} {format_money(summary.written_off):>16}")
    out.append("")
    out.append(
        "money balances to the micro-unit: " + ("yes" if summary.balanced else "NO (see wallets)")
    )
    return "\n".join(out)
