"""What a new catalog revision must not take away from live state: the stranding checks.

A revision applies to wallets that already hold SIMs, balances and pools. A change that
would leave one of them pointing at nothing is refused before it is published, naming what
depends on it:

- a plan removed while SIMs use it;
- a wallet's currency changed (its balance and its SIMs' charges are in the old one);
- a pool removed while SIMs are in it;
- a wallet removed while it has SIMs.

The SIMs in use are those of the shared SIM-route table whose last stint has not ended by
``now`` (each route replaces the catalog's subscription of its SIM and wallet), and the
current catalog's subscriptions still active that no route replaces. The new file's own
subscriptions were checked by the loader already. Pure: the caller reads the routes and
the wallets opened by command (engine/stream/directory.py) and passes them in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Protocol

import msgspec

from ..domain.catalog import Catalog
from ..domain.routing import Routes

SHOWN = 5
"""Dependents named in a message; the rest are counted."""


class CommandWallet(Protocol):
    """What the checks read of a wallet opened by command (the directory's entry)."""

    @property
    def currency(self) -> str: ...

    @property
    def open(self) -> bool: ...


class SimInUse(msgspec.Struct, frozen=True, order=True):
    iccid: str
    wallet: str
    plan: str
    pool: str | None


class Stranding(msgspec.Struct, frozen=True):
    """One refused change: ``kind`` (``plan_removed``, ``currency_changed``,
    ``pool_removed``, ``wallet_removed``), the id it is about, and what depends on it."""

    kind: str
    subject: str
    dependents: tuple[str, ...]
    message: str

    def __str__(self) -> str:
        return self.message


def sims_in_use(current: Catalog, routes: Routes, now: int) -> list[SimInUse]:
    """Every SIM that stays somewhere after ``now``, with its wallet, plan and pool."""
    found: list[SimInUse] = []
    for iccid, entries in routes.items():
        for wallet, route in entries.items():
            last = route.stints[-1] if route.stints else None
            if last is not None and (last[1] is None or last[1] > now) and route.plan:
                found.append(SimInUse(iccid, wallet, route.plan, route.pool))
    for iccid, sub in current.subscriptions.items():
        if sub.wallet in routes.get(iccid, {}):
            continue  # the route replaces the subscription
        if sub.active_to is None or sub.active_to > now:
            found.append(SimInUse(iccid, sub.wallet, sub.plan, sub.pool))
    return sorted(found)


def stranding(
    current: Catalog,
    new: Catalog,
    routes: Routes,
    wallets: Mapping[str, CommandWallet],
    now: int,
) -> list[Stranding]:
    """What publishing ``new`` over ``current`` would strand; empty when nothing."""
    in_use = sims_in_use(current, routes, now)
    problems = [
        *_plans_removed(new, in_use),
        *_currencies_changed(current, new, wallets, in_use),
        *_pools_removed(current, new, in_use),
        *_wallets_removed(current, new, wallets, in_use),
    ]
    return problems


def _group(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for key, dependent in pairs:
        grouped[key].append(dependent)
    return {key: sorted(set(values)) for key, values in sorted(grouped.items())}


def named(things: list[str], noun: str) -> str:
    """``3 SIMs: a, b, c`` with at most ``SHOWN`` named and the rest counted."""
    count = f"{len(things):,} {noun}{'' if len(things) == 1 else 's'}"
    shown = ", ".join(things[:SHOWN])
    more = f" and {len(things) - SHOWN:,} more" if len(things) > SHOWN else ""
    return f"{count}: {shown}{more}"


def _plans_removed(new: Catalog, in_use: list[SimInUse]) -> list[Stranding]:
    lost = _group(
        (s.plan, f"{s.iccid} (wallet {s.wallet})") for s in in_use if s.plan not in new.plans
    )
    return [
        Stranding(
            "plan_removed",
            plan,
            tuple(sims),
            f"plan '{plan}' is removed, but {named(sims, 'SIM')} use it; move them to "
            "another plan first (change-plan), or keep the plan",
        )
        for plan, sims in lost.items()
    ]


def _currencies_changed(
    current: Catalog,
    new: Catalog,
    wallets: Mapping[str, CommandWallet],
    in_use: list[SimInUse],
) -> list[Stranding]:
    sims = _group((s.wallet, s.iccid) for s in in_use)
    problems = []
    for wallet_id, wallet in sorted(new.wallets.items()):
        before = current.wallets.get(wallet_id)
        opened = wallets.get(wallet_id)
        had = before.currency if before is not None else (opened.currency if opened else None)
        if had is None or had == wallet.currency:
            continue
        held = sims.get(wallet_id, [])
        what = f"its balance and {named(held, 'SIM')}" if held else "its balance"
        problems.append(
            Stranding(
                "currency_changed",
                wallet_id,
                tuple(held),
                f"wallet '{wallet_id}' changes currency from {had} to {wallet.currency}, but "
                f"{what} are in {had}; a wallet keeps its currency: open a new wallet instead",
            )
        )
    return problems


def _pools_removed(current: Catalog, new: Catalog, in_use: list[SimInUse]) -> list[Stranding]:
    gone = set(current.pools) - set(new.pools)
    lost = _group((s.pool, s.iccid) for s in in_use if s.pool is not None and s.pool in gone)
    return [
        Stranding(
            "pool_removed",
            pool,
            tuple(sims),
            f"pool '{pool}' (wallet {current.pools[pool].wallet}) is removed mid-cycle, but "
            f"{named(sims, 'SIM')} are in it; detach them or move them to another pool first",
        )
        for pool, sims in lost.items()
    ]


def _wallets_removed(
    current: Catalog,
    new: Catalog,
    wallets: Mapping[str, CommandWallet],
    in_use: list[SimInUse],
) -> list[Stranding]:
    def gone(wallet: str) -> bool:
        opened = wallets.get(wallet)
        return wallet not in new.wallets and not (opened is not None and opened.open)

    removed = {w for w in current.wallets if gone(w)}
    lost = _group((s.wallet, s.iccid) for s in in_use if s.wallet in removed)
    return [
        Stranding(
            "wallet_removed",
            wallet,
            tuple(sims),
            f"wallet '{wallet}' is removed, but it has {named(sims, 'SIM')}; detach them "
            "(or move them to another wallet) first",
        )
        for wallet, sims in lost.items()
    ]
