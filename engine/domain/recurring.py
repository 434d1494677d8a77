"""Recurring charges: MRCs, add-on MRCs and pool fees, each exactly once per cycle."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from .catalog import PlanVersion, Subscription
from .charges import charge
from .cycles import Cycle, cycle_of, cycles_between, next_cycle
from .draft import Draft
from .ids import addon_ref, pool_ref
from .prorating import pool_amount, sim_amount
from .sims import active_in, plan_at, wallet_sims

MAX_CATCH_UP = 24
"""Cycles of recurring charges one tick may catch up after a long silence."""


def tick(d: Draft, at: datetime, ts: int) -> None:
    """Recurring charges due by ``ts``: each exactly once per cycle, catching up at most
    ``MAX_CATCH_UP`` cycles; a SIM or pool never charged before starts with this cycle.

    A charge pro-rated ``daily`` is due once its cycle has ended (``prorating``), and one
    never charged before starts with the last cycle that ended."""
    anchor = d.wallet.cycle_anchor_day
    now = cycle_of(ts, anchor)
    ended = cycle_of(now.start - 1, anchor)

    # Most refs were last charged for the same cycle: their due cycles are worked out once.
    memo: dict[tuple[str | None, bool], list[Cycle]] = {}

    def due(ref: str, daily: bool = False) -> list[Cycle]:
        last = d.state.recurring.get(ref)
        found = memo.get((last, daily))
        if found is None:
            found = memo[last, daily] = _due(last, ended if daily else now, anchor)
        return found

    for sub in wallet_sims(d.state, d.catalog):
        latest = _latest_version(d, sub, ts)
        daily = latest is not None and latest.prorate_mrc == "daily"
        for cycle in due(sub.iccid, daily):
            version = version_in(d, sub, cycle)
            if version is None:
                continue
            amount = sim_amount(d, sub, cycle, _mrc) if daily else version.mrc
            if amount:
                charge(d, at, ts, "mrc", sub.iccid, amount, version.mrc_splits, cycle.id)
        daily = latest is not None and latest.prorate_addons == "daily"
        for addon_id in sub.addons:
            ref = addon_ref(sub.iccid, addon_id)
            for cycle in due(ref, daily):
                version = version_in(d, sub, cycle)
                addon = version.addons.get(addon_id) if version is not None else None
                if addon is None:
                    continue
                amount = sim_amount(d, sub, cycle, _addon(addon_id)) if daily else addon.mrc
                if amount:
                    charge(d, at, ts, "addon_mrc", ref, amount, addon.splits, cycle.id)
    for pool_id in d.catalog.pools_by_wallet.get(d.wallet.id, ()):
        pool = d.catalog.pools[pool_id]
        fee = pool.tiers[0].price if pool.kind == "adaptive" and pool.tiers else pool.price
        if not fee:
            continue
        daily = pool.prorate_fee == "daily"
        ref = pool_ref(pool.id)
        for cycle in due(ref, daily):
            amount = pool_amount(d, pool, cycle, fee) if daily else fee
            if amount:
                charge(d, at, ts, "pool_fee", ref, amount, pool.splits, cycle.id)


def _due(last: str | None, upto: Cycle, anchor: int) -> list[Cycle]:
    """The cycles to charge up to ``upto`` after ``last`` (the cycle id last charged)."""
    if last is not None and last >= upto.id:  # ids are ISO dates: they sort as cycles
        return []
    first = upto if last is None else next_cycle(cycle_of(_parse_day(last), anchor), anchor)
    return cycles_between(first, upto, anchor)[-MAX_CATCH_UP:]


def _mrc(version: PlanVersion) -> int:
    return version.mrc


def _addon(addon_id: str) -> Callable[[PlanVersion], int]:
    def price(version: PlanVersion) -> int:
        addon = version.addons.get(addon_id)
        return addon.mrc if addon is not None else 0

    return price


def _latest_version(d: Draft, sub: Subscription, ts: int) -> PlanVersion | None:
    """The plan version the SIM is on at ``ts``, or when it was last active: it says how
    the SIM's recurring charges are counted."""
    when = ts if sub.active_to is None or sub.active_to > ts else sub.active_to - 1
    plan = d.catalog.plans.get(plan_at(d.state, sub, when))
    return plan.version_at(when) if plan else None


def _parse_day(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp())


def version_in(d: Draft, sub: Subscription, cycle: Cycle) -> PlanVersion | None:
    """The plan version a SIM's recurring charge for ``cycle`` is taken by (None: not active)."""
    if not active_in(sub, cycle):
        return None
    when = max(cycle.start, sub.active_from)
    plan = d.catalog.plans.get(plan_at(d.state, sub, when))
    return plan.version_at(when) if plan else None
