"""Grants: how a charge burns credit, and how the overdraft catches the rest."""

from __future__ import annotations

import msgspec

from .events import Debit
from .state import Grant, WalletState

Settlement = tuple[tuple[Debit, ...], int, int, tuple[Grant, ...]]
"""``(debits, overdraft, uncollected, grants)`` for one charge: what it takes from the
grants, then from the overdraft, what is left uncollected, and the grants after the debits
(exactly what ``apply_debits`` makes of them, so the decider need not burn them twice)."""


def settle(state: WalletState, amount: int, ts: int) -> Settlement:
    """Take ``amount`` from live grants in burn order, then from the overdraft (debt).

    A grant expired at ``ts`` is not drawn (its expiry is decided separately). What the
    grants do not cover is owed, however far below the overdraft limit it goes: the limit is
    where the wallet is suspended, not where debt stops (``uncollected`` is always 0 now; it
    remains in the result, and in events stored before, where it keeps its old meaning).
    """
    grants = state.grants
    if not amount:
        return (), 0, 0, grants
    if grants:
        first = grants[0]
        if first.remaining > amount > 0 and (first.expires_at is None or first.expires_at > ts):
            # The usual charge: the first grant in burn order covers it and stays alive.
            rest = msgspec.structs.replace(first, remaining=first.remaining - amount)
            return (Debit(first.id, amount),), 0, 0, (rest, *grants[1:])
    debits: list[Debit] = []
    kept: list[Grant] = []
    left = amount
    for grant in grants:
        if left > 0 and grant.remaining > 0 and (grant.expires_at is None or grant.expires_at > ts):
            take = min(left, grant.remaining)
            debits.append(Debit(grant.id, take))
            left -= take
            if take < grant.remaining:
                kept.append(msgspec.structs.replace(grant, remaining=grant.remaining - take))
        else:
            kept.append(grant)
    return tuple(debits), left, 0, tuple(kept) if debits else grants


def apply_debits(grants: tuple[Grant, ...], debits: tuple[Debit, ...]) -> tuple[Grant, ...]:
    """Grants after ``debits``; an exhausted grant leaves the list."""
    if not debits:
        return grants
    if len(debits) == 1 and grants and grants[0].id == debits[0].grant_id:
        # the usual debit, from the first grant in burn order (as ``settle`` takes it)
        first = grants[0]
        left = first.remaining - debits[0].amount
        rest = grants[1:]
        return (msgspec.structs.replace(first, remaining=left), *rest) if left > 0 else rest
    taken = {d.grant_id: d.amount for d in debits}
    out = []
    for g in grants:
        amount = taken.get(g.id)
        if amount is None:
            out.append(g)
        elif g.remaining - amount > 0:
            out.append(Grant(g.id, g.kind, g.remaining - amount, g.priority, g.expires_at, g.seq))
    return tuple(out)


def insert_grant(grants: tuple[Grant, ...], grant: Grant) -> tuple[Grant, ...]:
    return tuple(sorted((*grants, grant), key=lambda g: g.burn_key))


def expired(state: WalletState, ts: int) -> list[Grant]:
    """Live grants whose expiry is at or before ``ts``, oldest expiry first."""
    due = [g for g in state.grants if g.expires_at is not None and g.expires_at <= ts]
    if len(due) > 1:
        due.sort(key=lambda g: (g.expires_at, g.seq))
    return due
