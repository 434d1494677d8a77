"""Grants: how a charge burns credit, and how the overdraft catches the rest."""

from __future__ import annotations

import msgspec

from .events import Debit
from .state import Grant, WalletState


class Settlement(msgspec.Struct, frozen=True, gc=False):
    """What one charge takes: from the grants in burn order, then from the overdraft.

    ``grants`` are the grants after ``debits`` (``apply_debits``), carried so that the event
    the charge becomes can be applied without burning them a second time.
    """

    debits: tuple[Debit, ...]
    overdraft: int
    uncollected: int
    """Always 0 now: debt has no floor. Events stored before keep their old meaning."""
    grants: tuple[Grant, ...]


def settle(state: WalletState, amount: int, ts: int) -> Settlement:
    """Take ``amount`` from live grants in burn order, then from the overdraft (debt).

    A grant expired at ``ts`` is not drawn (its expiry is decided separately). What the
    grants do not cover is owed, however far below the overdraft limit it goes: the limit is
    where the wallet is suspended, not where debt stops.
    """
    grants = state.grants
    if amount <= 0:
        return Settlement((), amount if amount < 0 else 0, 0, grants)
    debits: list[Debit] = []
    left = amount
    for grant in grants:
        if grant.remaining > 0 and (grant.expires_at is None or grant.expires_at > ts):
            take = left if left < grant.remaining else grant.remaining
            debits.append(Debit(grant.id, take))
            left -= take
            if not left:
                break
    taken = tuple(debits)
    return Settlement(taken, left, 0, apply_debits(grants, taken))


def apply_debits(grants: tuple[Grant, ...], debits: tuple[Debit, ...]) -> tuple[Grant, ...]:
    """Grants after ``debits``; an exhausted grant leaves the list. The one place debits
    change grants: the decider (through ``settle``) and ``evolve`` both come here."""
    if not debits:
        return grants
    if len(debits) == 1 and grants and grants[0].id == debits[0].grant_id:
        # The usual charge: one debit, from the first grant in burn order.
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
            out.append(msgspec.structs.replace(g, remaining=g.remaining - amount))
    return tuple(out)


def insert_grant(grants: tuple[Grant, ...], grant: Grant) -> tuple[Grant, ...]:
    return tuple(sorted((*grants, grant), key=lambda g: g.burn_key))


def expired(state: WalletState, ts: int) -> list[Grant]:
    """Live grants whose expiry is at or before ``ts``, oldest expiry first."""
    due = []
    for g in state.grants:  # a loop, not a comprehension: asked once per rated record
        if g.expires_at is not None and g.expires_at <= ts:
            due.append(g)
    if len(due) > 1:
        due.sort(key=lambda g: (g.expires_at, g.seq))
    return due
