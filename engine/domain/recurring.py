"""Recurring charges: MRCs, add-on MRCs and pool fees, each exactly once per cycle."""

from __future__ import annotations

from datetime import UTC, datetime

from .catalog import PlanVersion, Subscription
from .charges import charge
from .cycles import Cycle, cycle_of, cycles_between, next_cycle
from .draft import Draft
from .ids import addon_ref, pool_ref
from .sims import active_in, plan_at, wallet_sims

MAX_CATCH_UP = 24
"""Cycles of recurring charges one tick may catch up after a long silence."""


def tick(d: Draft, at: datetime, ts: int) -> None:
    """Recurring charges due by ``ts``: each exactly once per cycle, catching up at most
    ``MAX_CATCH_UP`` cycles; a SIM or pool never charged before starts with this cycle."""
    anchor = d.wallet.cycle_anchor_day
    now = cycle_of(ts, anchor)

    def due(ref: str) -> list[Cycle]:
        last = d.state.recurring.get(ref)
        if last == now.id:
            return []
        first = now if last is None else next_cycle(cycle_of(_parse_day(last), anchor), anchor)
        return cycles_between(first, now, anchor)[-MAX_CATCH_UP:]

    for sub in wallet_sims(d.state, d.catalog):
        for cycle in due(sub.iccid):
            version = version_in(d, sub, cycle)
            if version is not None and version.mrc:
                charge(d, at, ts, "mrc", sub.iccid, version.mrc, version.mrc_splits, cycle.id)
        for addon_id in sub.addons:
            ref = addon_ref(sub.iccid, addon_id)
            for cycle in due(ref):
                version = version_in(d, sub, cycle)
                addon = version.addons.get(addon_id) if version is not None else None
                if addon is not None and addon.mrc:
                    charge(d, at, ts, "addon_mrc", ref, addon.mrc, addon.splits, cycle.id)
    for pool_id in d.catalog.pools_by_wallet.get(d.wallet.id, ()):
        pool = d.catalog.pools[pool_id]
        fee = pool.tiers[0].price if pool.kind == "adaptive" and pool.tiers else pool.price
        if not fee:
            continue
        ref = pool_ref(pool.id)
        for cycle in due(ref):
            charge(d, at, ts, "pool_fee", ref, fee, pool.splits, cycle.id)


def _parse_day(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp())


def version_in(d: Draft, sub: Subscription, cycle: Cycle) -> PlanVersion | None:
    """The plan version a SIM's recurring charge for ``cycle`` is taken by (None: not active)."""
    if not active_in(sub, cycle):
        return None
    when = max(cycle.start, sub.active_from)
    plan = d.catalog.plans.get(plan_at(d.state, sub, when))
    return plan.version_at(when) if plan else None
