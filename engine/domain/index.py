"""The catalog's index: tables worked out once from a catalog, read by every decision.

Built with the catalog (``catalog.build_catalog``) and immutable after: nothing in the
domain fills a cache while deciding, so two catalogs in one process never see each other's
tables, and a decision depends on its catalog alone. The index remembers the dicts it was
built from; a catalog derived with ``msgspec.structs.replace`` that swaps one of them is
read without the stale table (worked out on the spot), so it still rates by its own data.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from math import gcd
from types import MappingProxyType
from typing import TYPE_CHECKING

import msgspec

from .catalog import Plan, PlanVersion, Pool, Share, Subscription, Wallet, Zone
from .cycles import Calendar, Cycle, calendar, cycle_of
from .events import SplitLine
from .money import allocate
from .rating import RateTable

if TYPE_CHECKING:
    from .catalog import Catalog


def _active_in(sub: Subscription, cycle: Cycle) -> bool:
    return sub.active_from < cycle.end and (sub.active_to is None or sub.active_to > cycle.start)


class PoolMembers(msgspec.Struct, frozen=True, gc=False):
    """A pool's catalog subscriptions as sorted instants, so counting those active in a
    cycle is two binary searches, not a scan of the pool."""

    starts: tuple[int, ...]
    """``active_from`` of each member, sorted."""
    ends: tuple[int, ...]
    """``active_to`` of each member that has one, sorted."""
    odd: tuple[Subscription, ...] = ()
    """Members that end at or before they start: counted one by one (the searches assume
    a member ends after it starts)."""
    subscriptions: tuple[Subscription, ...] = ()
    """Every member, by ``active_from``: what a per-day count walks."""

    def active_in(self, cycle: Cycle) -> int:
        return self.begun_in(cycle, cycle.end - 1)

    def begun_in(self, cycle: Cycle, ts: int) -> int:
        """Members active in ``cycle`` that had started by ``ts`` (at or after the cycle's
        start): those started by then, less those that ended by the cycle's start (each of
        which started before it, so is in the first count)."""
        last = min(ts, cycle.end - 1)
        if last < cycle.start:
            return sum(
                1 for s in self.subscriptions if s.active_from <= ts and _active_in(s, cycle)
            )
        count = bisect_right(self.starts, last) - bisect_right(self.ends, cycle.start)
        return count + sum(1 for s in self.odd if s.active_from <= ts and _active_in(s, cycle))


def pool_members(pool: Pool, subs: list[Subscription]) -> PoolMembers:
    members = [s for s in subs if s.wallet == pool.wallet and s.pool == pool.id]
    regular = [s for s in members if s.active_to is None or s.active_to > s.active_from]
    odd = tuple(s for s in members if s.active_to is not None and s.active_to <= s.active_from)
    return PoolMembers(
        tuple(sorted(s.active_from for s in regular)),
        tuple(sorted(s.active_to for s in regular if s.active_to is not None)),
        odd,
        tuple(sorted(members, key=lambda s: s.active_from)),
    )


MAX_SPLIT_TOTAL = 10_000
"""Largest total of a split's weights worked out for every remainder (percentages are 100);
a split with a larger total (shares with four decimals of a percent) is computed per amount."""


class Splitter(msgspec.Struct, frozen=True, gc=False):
    """A revenue split (``money.allocate`` by its shares' weights) worked out up front.

    The largest-remainder method is linear in whole multiples of the weights' total: the
    parts of ``q * total + r`` are ``q`` times each weight plus the parts of ``r`` (the
    remainders, and so the order the leftover goes in, are the same). Weights are divided by
    their greatest common divisor first, which changes no part. Where the total is small
    every remainder's parts are tabulated; otherwise they are computed per amount, by plain
    loops (no comprehension frames: this runs once per rated record).
    """

    providers: tuple[str, ...]
    weights: tuple[int, ...]
    total: int
    parts: tuple[tuple[tuple[str, int, int], ...], ...]
    """Per remainder ``r`` below ``total`` (when tabulated): (provider, weight, part of
    ``r``) for each share, in order; empty when the total is too large to tabulate."""
    fixed: Mapping[int, tuple[SplitLine, ...]] = MappingProxyType({})
    """The lines of the catalog's fixed prices split by these shares (MRCs, fees), worked
    out once: a tick charges the same price for every SIM on a plan version. Charges read
    them (``draft.splits``); rated usage, whose amounts vary, goes to ``lines``."""

    def lines(self, amount: int) -> tuple[SplitLine, ...]:
        """The lines of ``amount``, exactly as ``draft.splits`` gives them (zero parts left
        out; a negative amount is split as its mirror image)."""
        if amount <= 0:
            if not amount:
                return ()
            return tuple([SplitLine(line.provider, -line.amount) for line in self.lines(-amount)])
        out = []
        if self.parts:
            q, r = divmod(amount, self.total)
            for provider, weight, extra in self.parts[r]:
                part = q * weight + extra
                if part:
                    out.append(SplitLine(provider, part))
            return tuple(out)
        parts = _allocated(amount, self.weights, self.total)
        for provider, part in zip(self.providers, parts, strict=True):
            if part:
                out.append(SplitLine(provider, part))
        return tuple(out)


def _allocated(amount: int, weights: tuple[int, ...], total: int) -> list[int]:
    """``allocate(amount, weights)`` for a positive amount and valid weights of ``total``."""
    floors = []
    remainders = []
    left = amount
    for weight in weights:
        floor, remainder = divmod(amount * weight, total)
        floors.append(floor)
        remainders.append(remainder)
        left -= floor
    # Leftover units go by largest remainder, the earliest of equals first; the two usual
    # cases take no sort: one unit left, or one short of a unit for every share.
    if left == 1:
        floors[remainders.index(max(remainders))] += 1
    elif left and left == len(weights) - 1:
        remainders.reverse()
        skip = left - remainders.index(min(remainders))  # the smallest, the latest of equals
        for i in range(len(floors)):
            if i != skip:
                floors[i] += 1
    elif left:
        order = sorted(range(len(weights)), key=remainders.__getitem__, reverse=True)
        for i in order[:left]:
            floors[i] += 1
    return floors


def splitter(shares: tuple[Share, ...], fixed: Iterable[int] = ()) -> Splitter | None:
    """The splitter of ``shares``, with the lines of the ``fixed`` amounts worked out, or
    ``None`` where there is nothing to split by (no weight, a negative one, or none above
    zero: ``allocate`` refuses them)."""
    weights = tuple([s.weight for s in shares])
    if not weights or sum(weights) <= 0 or min(weights) < 0:
        return None
    common = gcd(*weights)
    weights = tuple([w // common for w in weights])
    total = sum(weights)
    providers = tuple([s.provider for s in shares])
    parts: tuple[tuple[tuple[str, int, int], ...], ...] = ()
    if total <= MAX_SPLIT_TOTAL:
        parts = tuple(
            tuple(zip(providers, weights, allocate(r, weights), strict=True)) for r in range(total)
        )
    found = Splitter(providers, weights, total, parts)
    if not fixed:
        return found
    lines = {amount: found.lines(amount) for amount in sorted(set(fixed))}
    return Splitter(providers, weights, total, parts, MappingProxyType(lines))


def _all_shares(
    plans: dict[str, Plan], pools: dict[str, Pool]
) -> dict[tuple[Share, ...], set[int]]:
    """Every revenue split of the catalog, with the fixed prices charged by it."""
    found: dict[tuple[Share, ...], set[int]] = {}

    def add(shares: tuple[Share, ...], *prices: int) -> None:
        found.setdefault(shares, set()).update(prices)

    for pool in pools.values():
        add(pool.splits, pool.price, *(tier.price for tier in pool.tiers))
    for plan in plans.values():
        for v in plan.versions:
            add(v.usage_splits)
            add(v.mrc_splits, v.mrc)
            add(v.fee_splits)
            add(v.restart_fee_splits, v.restart_fee)
            for a in v.addons.values():
                add(a.splits, a.mrc)
    return found


class CatalogIndex(msgspec.Struct, frozen=True, gc=False):
    plans: Mapping[str, Plan]
    """The catalog's plans the rate tables were built from."""
    subscriptions: Mapping[str, Subscription]
    """The catalog's subscriptions the pool members were built from."""
    pools: Mapping[str, Pool]
    rate_tables: Mapping[tuple[str, int], RateTable]
    """(plan id, version number) -> its rate table (version numbers are unique per plan)."""
    members: Mapping[str, PoolMembers]
    """Pool id -> its catalog subscriptions."""
    splitters: Mapping[tuple[Share, ...], Splitter]
    """The catalog's revenue splits (by value: the same shares split the same anywhere)."""
    calendars: Mapping[int, Calendar]
    """Anchor day -> its cycles, for the anchor days of the catalog's wallets (a cycle
    depends on the anchor day alone, so another wallet with the same day reads it too)."""


CALENDAR_MONTHS = 50 * 12
"""How many cycles a calendar holds, from the earliest plan version's: no record before it
is rated (no plan version), and a record past the span finds its cycle by the calendar."""


def _calendars(plans: dict[str, Plan], wallets: dict[str, Wallet]) -> dict[int, Calendar]:
    starts = [v.effective_from for plan in plans.values() for v in plan.versions]
    if not starts:
        return {}
    first = min(starts)
    days = {w.cycle_anchor_day for w in wallets.values() if 1 <= w.cycle_anchor_day <= 28}
    return {day: calendar(day, first, CALENDAR_MONTHS) for day in sorted(days)}


def build_index(
    plans: dict[str, Plan],
    zones: dict[str, Zone],
    pools: dict[str, Pool],
    subscriptions: dict[str, Subscription],
    wallets: dict[str, Wallet],
) -> CatalogIndex:
    splitters = {}
    for shares, prices in _all_shares(plans, pools).items():
        found = splitter(shares, prices)
        if found is not None:
            splitters[shares] = found
    zone_ids = tuple(zones)
    tables = {
        (plan.id, version.version): RateTable(
            version, zone_ids, splitters.get(version.usage_splits)
        )
        for plan in plans.values()
        for version in plan.versions
    }
    subs = list(subscriptions.values())
    members = {pool.id: pool_members(pool, subs) for pool in pools.values()}
    return CatalogIndex(
        plans,
        subscriptions,
        pools,
        MappingProxyType(tables),
        MappingProxyType(members),
        MappingProxyType(splitters),
        MappingProxyType(_calendars(plans, wallets)),
    )


def rate_table(catalog: Catalog, plan_id: str, version: PlanVersion) -> RateTable:
    """The version's rate table: from the index, or worked out for a catalog without one."""
    index = catalog.index
    if index is not None and index.plans is catalog.plans:
        table = index.rate_tables.get((plan_id, version.version))
        if table is not None and table.version is version:
            return table
    return RateTable(version, ())  # no zone up front: each select works its choice out


def cycle_at(catalog: Catalog, ts: int, anchor_day: int) -> Cycle:
    """``cycles.cycle_of``, from the index's calendar of ``anchor_day`` when it has one."""
    index = catalog.index
    if index is not None:
        found = index.calendars.get(anchor_day)
        if found is not None:  # Calendar.cycle_at, one call less on the per-record path
            i = bisect_right(found.bounds, ts) - 1
            if 0 <= i < len(found.cycles):
                return found.cycles[i]
    return cycle_of(ts, anchor_day)


def members_of(catalog: Catalog, pool: Pool) -> PoolMembers:
    """The pool's catalog subscriptions: from the index, or worked out for a catalog
    without one (or whose subscriptions or pools were swapped since it was built)."""
    index = catalog.index
    if (
        index is not None
        and index.subscriptions is catalog.subscriptions
        and index.pools is catalog.pools
    ):
        found = index.members.get(pool.id)
        if found is not None:
            return found
    listed = catalog.sims_by_wallet.get(pool.wallet, ())
    return pool_members(pool, [catalog.subscriptions[i] for i in listed])
