"""Usage: a CDR resolved to what rates it, drawn from its pool, priced, and settled."""

from __future__ import annotations

from . import pools, rating
from .catalog import Filter, PlanVersion, Pool, Rate, Subscription
from .cdr import Cdr
from .charges import after_debit, charge, expire, open_wallet
from .cycles import Cycle
from .draft import Draft, splits
from .events import PoolStepped, UsageRated
from .grants import Settlement, settle
from .index import cycle_at, rate_table
from .limits import volume_problem
from .membership import pool_allowance
from .rating import RateTable
from .refusal import Refused
from .sims import active_at, plan_at, sim
from .zones import zone_of

Resolved = tuple[Subscription, str, PlanVersion, str, Rate, Filter | None, RateTable]
"""What a CDR is rated by: subscription, plan id, plan version, zone, rate, the filter
that chose the rate, and the version's rate table (a plain tuple: one is built for every
record)."""


def decide_cdr(d: Draft, cdr: Cdr, ts: int) -> None:
    """``ts``: the record's instant in epoch seconds (``limits.admit``)."""
    state = d.state
    at = cdr.started_at
    key = d.key
    # dedup.duplicate and dedup.late, asked inline (once per record): a key missing from a
    # generation's shared dict is in none of its versions, the usual case, found in C
    seen, before = state.seen, state.seen_before
    if (key in seen.instants and key in seen) or (key in before.instants and key in before):
        raise Refused("duplicate", "CDR already rated")
    if ts < state.retained_since:
        raise Refused("late", "older than the duplicate-detection window")
    found = resolve(d, cdr, ts)
    if not state.opened:
        open_wallet(d, at)
    if d.state.grants:
        expire(d, at, ts)
    rate(d, cdr, ts, found)


def resolve(d: Draft, cdr: Cdr, ts: int) -> Resolved:
    """Everything a CDR is rated by; raises `Refused` when it cannot be rated."""
    catalog, state = d.catalog, d.state
    if cdr.volume < 0:
        raise Refused("negative_volume", f"volume {cdr.volume}")
    too_much = volume_problem(catalog.limits, cdr.service, cdr.volume)
    if too_much is not None:
        raise Refused("volume_over_limit", too_much)
    sub = sim(state, catalog, cdr.iccid)
    if sub is None:
        raise Refused("unknown_sim", f"ICCID {cdr.iccid} is not in wallet {d.wallet.id}")
    if not active_at(sub, ts):
        raise Refused(
            "sim_inactive", f"ICCID {cdr.iccid} is not active at {cdr.started_at.isoformat()}"
        )
    plan_id = plan_at(state, sub, ts)
    plan = catalog.plans.get(plan_id)
    version = plan.version_at(ts) if plan else None
    if plan is None or version is None:
        raise Refused(
            "no_plan_version",
            f"plan {plan_id} has no version valid at {cdr.started_at.isoformat()}",
        )
    zone = zone_of(catalog.networks, cdr.mcc, cdr.mnc)
    if zone is None:
        raise Refused("unknown_zone", f"network {cdr.mcc}-{cdr.mnc} is in no zone")
    table = rate_table(catalog, plan_id, version)
    found, matched = table.select(cdr.service, zone, cdr.apn, cdr.rat, cdr.started_at)
    if found is None:
        raise Refused(
            "no_rate", f"plan {plan_id} v{version.version} has no {cdr.service} rate in {zone}"
        )
    if version.currency != d.wallet.currency:
        raise Refused("currency_mismatch", f"plan {plan_id} is in {version.currency}")
    return sub, plan_id, version, zone, found, matched, table


def rate(d: Draft, cdr: Cdr, ts: int, found: Resolved) -> None:
    sub, plan_id, version, zone, chosen, matched, table = found
    wallet = d.wallet
    service = cdr.service
    rounding = version.rounding.get(service)
    rated_volume = rating.rounded(cdr.volume, rounding) if rounding else cdr.volume
    cycle = cycle_at(d.catalog, ts, wallet.cycle_anchor_day)
    pool = _pool_of(d, sub.pool, service, zone) if sub.pool else None
    drawn = pools.NO_DRAW if pool is None else draw_pool(d, pool, cdr, cycle, ts, rated_volume)
    charged_volume = rated_volume - drawn.volume
    state = d.state  # after any pool step-up and its charge
    per_zone = version.tier_scope == "zone"
    used = 0
    if len(chosen.tiers) > 1:  # the cycle's volume so far only matters to graduated tiers
        counter = rating.tier_counter(cdr.iccid, service, cycle.id, zone if per_zone else None)
        used = state.tier_used.get(counter, 0)
    amount = rating.price(chosen, used, charged_volume)
    if amount > (limit := d.catalog.limits.max_charge):
        raise Refused(
            "amount_over_limit", f"charge {amount} is over the limit of {limit} per input"
        )
    payer = matched.payer if matched is not None and matched.payer else wallet.id
    split = table.usage
    lines = splits(d.catalog, version.usage_splits, amount) if not split else split.lines(amount)
    # What a record rated beyond its per-cycle pool (a stacked pool's bundles outlive cycles)
    # counts as the pool's overage.
    per_cycle = pool is not None and pool.kind != "stacked"
    overage_pool = pool.id if per_cycle and pool and charged_volume and payer == wallet.id else None
    # Routed usage is debited in the payer's wallet (``routing.routed_charge``), not here.
    paid = settle(state, amount, ts) if payer == wallet.id else Settlement((), 0, 0, state.grants)
    event = UsageRated(
        d.next_id(),
        wallet.id,
        cdr.started_at,
        cdr.cdr_id,
        cdr.iccid,
        service,
        zone,
        cdr.volume,
        rated_volume,
        drawn.volume,
        charged_volume,
        amount,
        plan_id,
        version.version,
        cycle.id,
        payer,
        cdr.source,
        matched.name if matched is not None else None,
        drawn.draws,
        paid.debits,
        paid.overdraft,
        paid.uncollected,
        lines,
        per_zone,
        overage_pool,
    )
    d.emit(event, paid.grants, ts, d.key)
    if payer == wallet.id and amount:
        after_debit(d, cdr.started_at, ts)


def _pool_of(d: Draft, pool_id: str | None, service: str, zone: str) -> Pool | None:
    """The SIM's pool, if it covers the record's service and zone."""
    pool = d.catalog.pools.get(pool_id) if pool_id else None
    if pool is None or not pools.covers(pool, service, zone):
        return None
    return pool


def draw_pool(d: Draft, pool: Pool, cdr: Cdr, cycle: Cycle, ts: int, volume: int) -> pools.Draw:
    """What ``pool`` (covering the record) takes of ``volume``, stepping it up if it must."""
    granted = 0
    if volume > 0 and pool.kind in ("static", "flexible"):  # no volume: nothing is drawn
        granted = pool_allowance(d.state, d.catalog, pool, cycle, ts)
    drawn = pools.draw(d.state, pool, cycle, ts, volume, granted)
    if drawn.step is not None:
        at = cdr.started_at
        d.emit(
            PoolStepped(
                d.next_id(), d.wallet.id, at, pool.id, cycle.id, drawn.step.tier, drawn.step.size
            )
        )
        if drawn.step.price:
            charge(d, at, ts, "pool_step", pool.id, drawn.step.price, pool.splits, cycle.id)
    return drawn
