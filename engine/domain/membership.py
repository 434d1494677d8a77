"""Who was in a pool during a cycle, and the allowance that makes.

A SIM's stints in this wallet: its catalog subscription (up to a detachment, or up to the
``AttachSim`` that replaced it), then each attachment by command. A pool counts every SIM
that had a stint in it overlapping the cycle and begun by the instant asked about, however
the SIM arrived and wherever it went after: an allowance grows when a SIM arrives and never
shrinks when one leaves. At the cycle's close (any instant past its end) every stint counts,
so overage rated before the allowance grew can be credited back (``closing``).

Pro-rating (``Pool.prorate_allowance``): ``none`` counts each SIM for the whole cycle;
``daily`` counts the days it was in the pool, from the day it arrived (counted) to the day it
left (not counted), over the cycle's days, rounded once, half-up. A static pool's allowance
is then pro-rated by the days of the cycle on which it had at least one SIM.
"""

from __future__ import annotations

import msgspec

from .catalog import Catalog, Pool, Subscription
from .cycles import DAY, Cycle
from .index import members_of
from .money import div_round_half_up
from .sims import active_in, sim
from .state import WalletState


def stints(state: WalletState, catalog: Catalog, iccid: str) -> list[Subscription]:
    """Every stint of the SIM in this wallet, oldest first, each with its end applied."""
    out: list[Subscription] = []
    listed = catalog.subscriptions.get(iccid)
    if listed is not None and listed.wallet == state.wallet_id:
        until = state.catalog_until.get(iccid)
        if until is not None:
            if listed.active_to is None or listed.active_to > until:
                listed = msgspec.structs.replace(listed, active_to=until)
            if listed.active_from < until:
                out.append(listed)
        elif iccid not in state.attached:
            current = sim(state, catalog, iccid)
            if current is not None:
                out.append(current)
    out.extend(state.past.get(iccid, ()))
    if iccid in state.attached:
        current = sim(state, catalog, iccid)
        if current is not None:
            out.append(current)
    return out


def days_in(sub: Subscription, cycle: Cycle) -> int:
    """Days of ``cycle`` the stint covers: its first day counts, the day it ends does not."""
    start = max(sub.active_from, cycle.start) // DAY
    end = (cycle.end if sub.active_to is None else min(sub.active_to, cycle.end)) // DAY
    return max(0, end - start)


def _day_mask(sub: Subscription, cycle: Cycle) -> int:
    days = days_in(sub, cycle)
    if not days:
        return 0
    first = max(sub.active_from, cycle.start) // DAY - cycle.start // DAY
    return ((1 << days) - 1) << first


def _in_pool(sub: Subscription, pool: Pool, cycle: Cycle, ts: int) -> bool:
    return sub.pool == pool.id and sub.active_from <= ts and active_in(sub, cycle)


def _weight(found: list[Subscription], pool: Pool, cycle: Cycle, daily: bool) -> int:
    """One SIM's share of a flexible pool: 1 if it was in it, or the days it was (at most
    the cycle's)."""
    if not found:
        return 0
    if not daily:
        return 1
    return min(sum(days_in(s, cycle) for s in found), (cycle.end - cycle.start) // DAY)


def _touched(state: WalletState) -> set[str]:
    """SIMs whose stints commands changed: the rest are exactly as the catalog lists them."""
    if not (state.attached or state.detached or state.catalog_until or state.past):
        return set()
    return {*state.attached.keys(), *state.detached.keys(), *state.catalog_until.keys()} | {
        *state.past.keys()
    }


def _catalog_members(catalog: Catalog, pool: Pool, cycle: Cycle) -> list[Subscription]:
    """The catalog's subscriptions in the pool active in the cycle, by ``active_from``."""
    return [s for s in members_of(catalog, pool).subscriptions if active_in(s, cycle)]


def _catalog_units(catalog: Catalog, pool: Pool, cycle: Cycle, ts: int, daily: bool) -> int:
    """The catalog's SIMs (or SIM-days) of a flexible pool in ``cycle`` begun by ``ts``: two
    binary searches in the index per SIM count; the days of each member per day count."""
    members = members_of(catalog, pool)
    if not daily:
        return members.begun_in(cycle, ts)
    return sum(
        days_in(s, cycle)
        for s in members.subscriptions
        if s.active_from <= ts and active_in(s, cycle)
    )


def _flexible_units(
    state: WalletState, catalog: Catalog, pool: Pool, cycle: Cycle, ts: int, daily: bool
) -> int:
    """SIMs (or SIM-days) of a flexible pool in ``cycle``, counting stints begun by ``ts``:
    the catalog's part from the index, then the SIMs commands touched one by one, so a busy
    pool costs a lookup, not a scan."""
    units = _catalog_units(catalog, pool, cycle, ts, daily)
    for iccid in _touched(state):
        listed = catalog.subscriptions.get(iccid)
        if (
            listed is not None
            and listed.wallet == pool.wallet
            and _in_pool(listed, pool, cycle, ts)
        ):
            units -= _weight([listed], pool, cycle, daily)
        found = [s for s in stints(state, catalog, iccid) if _in_pool(s, pool, cycle, ts)]
        units += _weight(found, pool, cycle, daily)
    return units


def member_days(state: WalletState, catalog: Catalog, pool: Pool, cycle: Cycle, ts: int) -> int:
    """Days of ``cycle`` on which the pool had at least one SIM (stints begun by ``ts``)."""
    touched = _touched(state)
    mask = 0
    for listed in _catalog_members(catalog, pool, cycle):
        if listed.iccid not in touched and listed.active_from <= ts:
            mask |= _day_mask(listed, cycle)
    for iccid in sorted(touched):
        for s in stints(state, catalog, iccid):
            if _in_pool(s, pool, cycle, ts):
                mask |= _day_mask(s, cycle)
    return mask.bit_count()


def pool_allowance(state: WalletState, catalog: Catalog, pool: Pool, cycle: Cycle, ts: int) -> int:
    """A static or flexible pool's allowance in ``cycle`` as it stands at ``ts`` (past the
    cycle's end: its final allowance)."""
    daily = pool.prorate_allowance == "daily"
    cycle_days = (cycle.end - cycle.start) // DAY
    if pool.kind == "static":
        if not daily:
            return pool.allowance
        days = member_days(state, catalog, pool, cycle, ts)
        return div_round_half_up(pool.allowance * days, cycle_days)
    units = _flexible_units(state, catalog, pool, cycle, ts, daily)
    if not daily:
        return pool.per_sim * units
    return div_round_half_up(pool.per_sim * units, cycle_days)
