"""Grants: how a charge burns credit, and how the overdraft catches the rest."""

from __future__ import annotations

from .events import Debit
from .state import Grant, WalletState


class Settlement(tuple[tuple[Debit, ...], int, int]):
    """``(debits, overdraft, uncollected)`` for one charge."""

    __slots__ = ()


def settle(state: WalletState, amount: int, ts: int, overdraft_limit: int) -> Settlement:
    """Take ``amount`` from live grants in burn order, then from the overdraft.

    A grant expired at ``ts`` is not drawn (its expiry is decided separately). Usage the
    network already carried is always rated: what the overdraft cannot hold is recorded as
    uncollected rather than refused.
    """
    debits: list[Debit] = []
    left = amount
    for grant in state.grants:
        if left <= 0:
            break
        if grant.remaining <= 0 or (grant.expires_at is not None and grant.expires_at <= ts):
            continue
        take = min(left, grant.remaining)
        debits.append(Debit(grant.id, take))
        left -= take
    room = max(0, overdraft_limit - state.debt)
    overdraft = min(left, room)
    return Settlement((tuple(debits), overdraft, left - overdraft))


def apply_debits(grants: tuple[Grant, ...], debits: tuple[Debit, ...]) -> tuple[Grant, ...]:
    """Grants after ``debits``; an exhausted grant leaves the list."""
    if not debits:
        return grants
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
