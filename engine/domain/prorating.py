"""Daily pro-rating of recurring charges: the days of a cycle a SIM (or a pool) was there.

A recurring charge whose plan (or pool) says ``daily`` is taken in arrears, when its cycle
has ended (the first ``Tick`` after it), so the days are known and charged once, never
corrected: ``sum(monthly amount of each plan segment × its days) / days of the cycle``,
rounded once, half-up. A day counts from the day the SIM arrived (that day included) to
the day it left or changed plan (not included), so a plan change splits the cycle's days
exactly between the two plans. ``none`` (the default) keeps charging the whole cycle in
advance (``recurring``).
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from .catalog import PlanVersion, Pool, Subscription
from .cycles import DAY, Cycle
from .draft import Draft
from .membership import days_in, member_days, stints
from .money import div_round_half_up

Price = Callable[[PlanVersion], int]
"""The monthly amount a plan version charges for one recurring charge (its MRC, an add-on's)."""


def segments(d: Draft, sub: Subscription, cycle: Cycle) -> list[tuple[Subscription, str]]:
    """The SIM's time in ``cycle`` cut where it changed plan: (stint piece, plan id)."""
    out: list[tuple[Subscription, str]] = []
    current = d.state.attached.get(sub.iccid)
    for stint in stints(d.state, d.catalog, sub.iccid):
        changes: tuple[tuple[int, str], ...] = ()
        if current is None or stint.active_from == current.active_from:
            changes = d.state.plan_changes.get(sub.iccid, ())
        start, plan = stint.active_from, stint.plan
        for since, changed in changes:
            if since <= start:
                plan = changed
                continue
            if stint.active_to is not None and since >= stint.active_to:
                break
            out.append((msgspec.structs.replace(stint, active_from=start, active_to=since), plan))
            start, plan = since, changed
        out.append((msgspec.structs.replace(stint, active_from=start), plan))
    return [(piece, plan) for piece, plan in out if days_in(piece, cycle)]


def sim_amount(d: Draft, sub: Subscription, cycle: Cycle, price: Price) -> int:
    """A SIM's charge for ``cycle`` by the days it spent on each plan version."""
    total = 0
    for piece, plan_id in segments(d, sub, cycle):
        plan = d.catalog.plans.get(plan_id)
        version = plan.version_at(max(piece.active_from, cycle.start)) if plan else None
        if version is not None:
            total += price(version) * days_in(piece, cycle)
    return div_round_half_up(total, (cycle.end - cycle.start) // DAY)


def pool_amount(d: Draft, pool: Pool, cycle: Cycle, fee: int) -> int:
    """A pool's fee for the days of ``cycle`` on which it had at least one SIM."""
    days = member_days(d.state, d.catalog, pool, cycle, cycle.end)
    return div_round_half_up(fee * days, (cycle.end - cycle.start) // DAY)
