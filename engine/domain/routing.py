"""Which wallet owns a record: the SIM-route valid at the CDR's start, and the routed
charges of split billing.

**The ordering rule.** A CDR goes to the wallet whose stint of its SIM covers the CDR's
``started_at``: stints come from the SIM-route table (one `SimRoute` per SIM and wallet
it was ever in by command, written by that wallet's owner after each decision that moved
it) over the catalog's subscriptions. A SIM with no route covering the instant is not
known *yet* to the router: the stream holds its CDR for a while (a provisioning command
may still be on its way) and then routes it by `fallback_wallet` (whose wallet rejects it
with the reason), or rejects it as ``unknown_sim`` when no wallet ever had the SIM.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

from .catalog import Catalog
from .commands import ApplyCharge
from .events import Event, PlanChanged, SimAttached, SimDetached, UsageRated
from .ids import routed_command_id
from .sims import plan_at, sim, stints
from .state import WalletState

Stint = tuple[int, int | None]
"""[from, to) in epoch seconds; ``to`` is ``None`` while the SIM stays."""


class SimRoute(msgspec.Struct, frozen=True, gc=False):
    """One SIM's stints in one wallet, as its owner last decided them: a record of the
    shared SIM-route table (it replaces the catalog's subscription for that pair)."""

    iccid: str
    wallet: str
    stints: tuple[Stint, ...]
    """Ascending; empty when the SIM never stayed (attached and detached at once)."""
    plan: str = ""
    """The plan it is on now (after plan changes); empty once it left."""
    pool: str | None = None


Routes = Mapping[str, Mapping[str, SimRoute]]
"""ICCID -> wallet -> that SIM's route in that wallet."""

NO_ROUTES: Routes = {}


def _stints(catalog: Catalog, routes: Routes, iccid: str) -> list[tuple[int, int | None, str]]:
    """Every (from, to, wallet) known for ``iccid``: the routes, then any catalog
    subscription whose wallet has no route for it."""
    found: list[tuple[int, int | None, str]] = []
    entries = routes.get(iccid)
    if entries:
        for wallet, route in entries.items():
            found.extend((start, end, wallet) for start, end in route.stints)
    sub = catalog.subscriptions.get(iccid)
    if sub is not None and not (entries and sub.wallet in entries):
        found.append((sub.active_from, sub.active_to, sub.wallet))
    return found


def covering_wallet(catalog: Catalog, routes: Routes, iccid: str, ts: int) -> str | None:
    """The wallet whose stint of ``iccid`` covers ``ts`` (the latest to begin, should two
    overlap); ``None`` when none does."""
    if iccid not in routes:  # the common case: the catalog's subscription alone
        sub = catalog.subscriptions.get(iccid)
        if sub is None or ts < sub.active_from:
            return None
        return sub.wallet if sub.active_to is None or ts < sub.active_to else None
    best: tuple[int, str] | None = None
    for start, end, wallet in _stints(catalog, routes, iccid):
        if start <= ts and (end is None or ts < end) and (best is None or (start, wallet) > best):
            best = (start, wallet)
    return None if best is None else best[1]


def fallback_wallet(catalog: Catalog, routes: Routes, iccid: str, ts: int) -> str | None:
    """Where a CDR no stint covers goes, to be rejected by that wallet with its reason:
    the wallet of the latest stint begun by ``ts``, else of the earliest; ``None`` when no
    wallet ever had the SIM."""
    known = _stints(catalog, routes, iccid)
    if not known:
        return None
    begun = [(start, wallet) for start, _, wallet in known if start <= ts]
    if begun:
        return max(begun)[1]
    return min((start, wallet) for start, _, wallet in known)[1]


def wallet_of(catalog: Catalog, routes: Routes, iccid: str, ts: int) -> str | None:
    """The wallet that rates ``iccid``'s usage started at ``ts``: the covering one, else
    the fallback; ``None`` for a SIM no wallet ever had."""
    if not routes or iccid not in routes:
        # The catalog alone: its one subscription, whatever the instant (that wallet
        # then rejects a CDR outside the stint, with the reason).
        sub = catalog.subscriptions.get(iccid)
        return None if sub is None else sub.wallet
    found = covering_wallet(catalog, routes, iccid, ts)
    return found if found is not None else fallback_wallet(catalog, routes, iccid, ts)


MOVES = (SimAttached, SimDetached, PlanChanged)
"""The events after which a SIM's route in its wallet is written again."""


def routes_after(
    state: WalletState, catalog: Catalog, events: Iterable[Event], ts: int
) -> list[SimRoute]:
    """The routes of the SIMs ``events`` moved, as ``state`` (after them) has them, in the
    order first moved; ``ts`` is the decision's instant (for the plan it is on now)."""
    iccids = dict.fromkeys(e.iccid for e in events if isinstance(e, MOVES))
    out = []
    for iccid in iccids:
        now = sim(state, catalog, iccid)
        if now is not None and now.active_to is not None and now.active_to <= ts:
            now = None  # it left
        plan = plan_at(state, now, ts) if now is not None else ""
        pool = now.pool if now is not None else None
        out.append(SimRoute(iccid, state.wallet_id, stints(state, catalog, iccid), plan, pool))
    return out


def with_routes(routes: dict[str, dict[str, SimRoute]], new: Iterable[SimRoute]) -> None:
    """Record ``new`` routes in ``routes`` (each replaces its SIM and wallet's last)."""
    for route in new:
        routes.setdefault(route.iccid, {})[route.wallet] = route


def routed_charge(e: UsageRated) -> ApplyCharge | None:
    """The charge ``e`` routes to its payer, or ``None`` when its own wallet pays (or it
    costs nothing).

    The command id derives from the event, so sending it twice debits the payer once.
    """
    if e.payer == e.wallet_id or not e.amount:
        return None
    return ApplyCharge(
        command_id=routed_command_id(e.id),
        wallet_id=e.payer,
        at=e.at,
        source_wallet=e.wallet_id,
        cdr_id=e.cdr_id,
        amount=e.amount,
    )
