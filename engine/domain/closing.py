"""A pool's cycle closes: its final allowance, use and overage, and the true-up.

The first ``Tick`` after a cycle's end closes it for each of the wallet's pools drawn from or
rated beyond in it (stacked pools excepted: their bundles outlive cycles), in order, at most
``MAX_CATCH_UP`` cycles at once. A flexible pool's allowance grows as SIMs arrive during the
cycle (``membership``), so usage rated as overage before a SIM arrived may fit the final
allowance: that volume moves into the pool and its price comes back as a refund grant, at
the average price of the cycle's overage, rounded once, half-up, with revenue lines that
take it back from the providers in proportion to what they got (largest remainder).
"""

from __future__ import annotations

from datetime import UTC, datetime

from .catalog import DEFAULT_PRIORITY, Pool
from .charges import resume
from .cycles import Cycle, cycle_of, cycles_between, next_cycle
from .draft import Draft
from .events import GrantInfo, PoolCycleClosed, SimsBarred, SplitLine
from .ids import closing_ref
from .membership import pool_allowance
from .money import allocate, div_round_half_up
from .recurring import MAX_CATCH_UP


def close_pools(d: Draft, at: datetime, ts: int) -> None:
    """Close every pool cycle that ended by ``ts`` and is not closed yet.

    Run last in a tick, after its recurring charges, so a credit may then resume a suspended
    wallet (all or nothing, as any credit) unless this decision barred its SIMs: no
    decision both bars and unbars a SIM."""
    anchor = d.wallet.cycle_anchor_day
    now = cycle_of(ts, anchor)
    credited = False
    for pool_id in d.catalog.pools_by_wallet.get(d.wallet.id, ()):
        pool = d.catalog.pools[pool_id]
        if pool.kind == "stacked":
            continue
        first = _first_open(d, pool, anchor)
        if first is None:
            continue
        for cycle in cycles_between(first, now, anchor)[-MAX_CATCH_UP:]:
            if cycle.end <= ts:
                credited = close(d, at, ts, pool, cycle) or credited
    if credited and d.state.suspended and not any(isinstance(e, SimsBarred) for e in d.events):
        resume(d, at, ts)


def _first_open(d: Draft, pool: Pool, anchor: int) -> Cycle | None:
    """The first cycle of ``pool`` not closed yet: the one after the last closed, or, for a
    pool never closed, the first it was drawn from or rated beyond in."""
    last = d.state.recurring.get(closing_ref(pool.id))
    if last is not None:
        return next_cycle(cycle_of(_day(last), anchor), anchor)
    used = [c for p, c in d.state.pool_used if p == pool.id]
    used += [c for p, c in d.state.pool_overage if p == pool.id]
    return cycle_of(_day(min(used)), anchor) if used else None


def _day(cycle_id: str) -> int:
    return int(datetime.fromisoformat(cycle_id).replace(tzinfo=UTC).timestamp())


def close(d: Draft, at: datetime, ts: int, pool: Pool, cycle: Cycle) -> bool:
    """Emit the cycle's ``PoolCycleClosed``; True when it credited money back."""
    state = d.state
    key = (pool.id, cycle.id)
    used = state.pool_used.get(key, 0)
    volume, amount, lines = state.pool_overage.get(key, (0, 0, ()))
    if pool.kind == "adaptive":
        allowance = pool.tiers[state.pool_tier.get(key, 0)].size if pool.tiers else 0
    else:
        # Daily pro-rating gives up a leaving SIM's remaining days, but never what the
        # pool already covered: that stays covered, and is never charged again.
        allowance = max(pool_allowance(state, d.catalog, pool, cycle, ts), used)
    moved = min(volume, max(0, allowance - used))
    back = div_round_half_up(amount * moved, volume) if moved else 0
    grant = None
    splits: tuple[SplitLine, ...] = ()
    if back:
        grant = GrantInfo(d.next_id(), "refund", back, DEFAULT_PRIORITY["refund"])
        weights = tuple(w for _, w in lines if w > 0)
        if weights:
            parts = allocate(back, weights)
            providers = [p for p, w in lines if w > 0]
            splits = tuple(SplitLine(p, -x) for p, x in zip(providers, parts, strict=True) if x)
    d.emit(
        PoolCycleClosed(
            d.next_id(),
            d.wallet.id,
            at,
            pool.id,
            cycle.id,
            pool.kind,
            allowance,
            used + moved,
            volume - moved,
            amount - back,
            moved,
            grant,
            min(state.debt, back),
            splits,
        )
    )
    return back > 0
