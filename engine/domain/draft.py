"""A decision while it is being made: the events so far and the state they lead to.

Each event is applied to a working copy of the state as it is emitted, so later rules
(thresholds, suspension) see the effect of earlier ones, and the state a decision ends in
is by construction ``fold(evolve, events)``. A rule that refuses the input raises `Refused`;
`wallet.step` turns it into the input's one rejection event, and nothing else is decided.
"""

from __future__ import annotations

from .catalog import Catalog, Share, Wallet
from .cdr import Cdr
from .commands import Command
from .events import CdrRejected, CommandRejected, Event, SplitLine
from .evolve import Grants, evolve
from .ids import event_id, rejection_id
from .money import allocate
from .state import WalletState

Input = Cdr | Command


class Refused(Exception):
    """Why an input is rejected: the reason and detail of its ``CdrRejected`` or
    ``CommandRejected``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail


class Draft:
    """The events of one decision so far, and the state they lead to."""

    __slots__ = ("catalog", "events", "key", "state", "wallet")

    def __init__(self, state: WalletState, key: str, catalog: Catalog, wallet: Wallet) -> None:
        self.state = state
        self.key = key
        self.catalog = catalog
        self.wallet = wallet
        self.events: list[Event] = []

    def next_id(self) -> str:
        return event_id(self.key, len(self.events))

    def emit(self, event: Event, grants: Grants = None) -> None:
        """Add ``event`` and apply it; ``grants``: those its debits leave, when the rule
        that emits it has just settled them (see ``evolve``)."""
        self.events.append(event)
        self.state = evolve(self.state, event, grants)


def rejection(wallet_id: str, item: Input, reason: str, detail: str) -> Event:
    """The one event of a rejected input, named by its reason: a later, accepted retry of
    the same input can never reuse its id."""
    eid = rejection_id(item.key, reason)
    if isinstance(item, Cdr):
        return CdrRejected(
            eid, wallet_id, item.started_at, item.cdr_id, item.iccid, reason, detail, item.source
        )
    return CommandRejected(
        eid, wallet_id, item.at, item.command_id, type(item).__name__, reason, detail
    )


def splits(shares: tuple[Share, ...], amount: int) -> tuple[SplitLine, ...]:
    """Revenue lines for a charge; they sum exactly to it (largest remainder)."""
    if not amount or not shares:
        return ()
    if len(shares) == 1 and shares[0].weight > 0:
        return (SplitLine(shares[0].provider, amount),)  # what allocate gives, without it
    parts = allocate(amount, tuple([s.weight for s in shares]))
    return tuple([SplitLine(s.provider, p) for s, p in zip(shares, parts, strict=True) if p])
