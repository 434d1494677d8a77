"""A decision while it is being made: the events so far and the state they lead to.

Each event is applied to a working copy of the state as it is emitted, so later rules
(thresholds, suspension) see the effect of earlier ones, and the state a decision ends in
is by construction ``fold(evolve, events)``. A rule that refuses the input raises
`refusal.Refused`; `wallet.step` turns it into the input's one rejection event, and nothing
else is decided.
"""

from __future__ import annotations

import msgspec

from .catalog import Catalog, Share, Wallet
from .events import Event, SplitLine
from .evolve import Grants, evolve
from .ids import event_id
from .money import allocate
from .state import WalletState


class Draft(msgspec.Struct, gc=False):
    """The events of one decision so far, and the state they lead to.

    A mutable Struct, built in C once per input (a class's ``__init__`` is a Python call),
    and untracked by the collector: nothing it holds refers back to it.
    """

    state: WalletState
    key: str
    catalog: Catalog
    wallet: Wallet
    events: list[Event] = msgspec.field(default_factory=list)

    def next_id(self) -> str:
        return event_id(self.key, len(self.events))

    def emit(
        self, event: Event, grants: Grants = None, ts: int | None = None, key: str | None = None
    ) -> None:
        """Add ``event`` and apply it; ``grants``, ``ts`` and ``key``: what the rule that
        emits it already holds of it, so ``evolve`` need not work it out again (see there)."""
        self.events.append(event)
        self.state = evolve(self.state, event, grants, ts, key)


def splits(catalog: Catalog, shares: tuple[Share, ...], amount: int) -> tuple[SplitLine, ...]:
    """Revenue lines for a charge; they sum exactly to it (largest remainder)."""
    index = catalog.index
    if index is not None:
        found = index.splitters.get(shares)
        if found is not None:
            fixed = found.fixed.get(amount)
            return found.lines(amount) if fixed is None else fixed
    if not amount or not shares:
        return ()
    parts = allocate(amount, tuple([s.weight for s in shares]))
    return tuple([SplitLine(s.provider, p) for s, p in zip(shares, parts, strict=True) if p])
