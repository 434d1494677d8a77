"""A wallet's SIMs as they stand: the catalog's subscriptions overlaid with commands."""

from __future__ import annotations

import msgspec

from .catalog import Catalog, Subscription
from .cycles import Cycle
from .state import WalletState


def sim(state: WalletState, catalog: Catalog, iccid: str) -> Subscription | None:
    """The SIM's subscription in this wallet, with any detachment applied; None if not ours."""
    sub = state.attached.get(iccid)
    if sub is None:
        sub = catalog.subscriptions.get(iccid)
        if sub is None or sub.wallet != state.wallet_id:
            return None
    left = state.detached.get(iccid)
    if left is not None and (sub.active_to is None or left < sub.active_to):
        sub = msgspec.structs.replace(sub, active_to=left)
    return sub


def sim_at(state: WalletState, catalog: Catalog, iccid: str, ts: int) -> Subscription | None:
    """The SIM's subscription when it is in this wallet and active at ``ts``."""
    found = sim(state, catalog, iccid)
    return found if found is not None and active_at(found, ts) else None


def plan_at(state: WalletState, sub: Subscription, ts: int) -> str:
    """The plan the SIM is on at ``ts``, after any plan changes."""
    plan = sub.plan
    for since, changed in state.plan_changes.get(sub.iccid, ()):
        if since > ts:
            break
        plan = changed
    return plan


def active_at(sub: Subscription, ts: int) -> bool:
    return sub.active_from <= ts and (sub.active_to is None or ts < sub.active_to)


def active_in(sub: Subscription, cycle: Cycle) -> bool:
    return sub.active_from < cycle.end and (sub.active_to is None or sub.active_to > cycle.start)


def wallet_sims(state: WalletState, catalog: Catalog) -> list[Subscription]:
    """Every SIM this wallet has or had, catalog order first, then attached ones by ICCID.

    Attached SIMs are sorted: a persistent map's iteration order follows string hashes,
    which change from process to process, and events must not.
    """
    out = []
    for iccid in catalog.sims_by_wallet.get(state.wallet_id, ()):
        if iccid not in state.attached:
            found = sim(state, catalog, iccid)
            if found is not None:
                out.append(found)
    for iccid in sorted(state.attached):
        found = sim(state, catalog, iccid)
        if found is not None:
            out.append(found)
    return out


def active_iccids(state: WalletState, catalog: Catalog, ts: int) -> tuple[str, ...]:
    return tuple(s.iccid for s in wallet_sims(state, catalog) if active_at(s, ts))


def stints(state: WalletState, catalog: Catalog, iccid: str) -> tuple[tuple[int, int | None], ...]:
    """Every stint of ``iccid`` in this wallet, ascending: the catalog's (up to where an
    attachment took over), earlier ones by command, and the current one."""
    found: list[tuple[int, int | None]] = []
    listed = catalog.subscriptions.get(iccid)
    if listed is not None and listed.wallet == state.wallet_id and iccid in state.attached:
        end = state.catalog_until.get(iccid, listed.active_to)
        if end is None or end > listed.active_from:
            found.append((listed.active_from, end))
    found.extend((p.active_from, p.active_to) for p in state.past.get(iccid, ()))
    now = sim(state, catalog, iccid)
    if now is not None and (now.active_to is None or now.active_to > now.active_from):
        found.append((now.active_from, now.active_to))
    return tuple(sorted(set(found), key=lambda s: s[0]))
