"""decide(state, input, catalog) -> events: every rule of a wallet, and nothing else.

The rules live by job: ``usage`` (a CDR resolved, drawn from its pool, priced, settled),
``account`` (commands: credit, routed and corrected charges, SIMs and plans), ``recurring``
(MRCs and fees per cycle), ``charges`` (money moving and what the balance then triggers).
A decision is drafted (``draft.Draft``): each event applied as it is emitted. A refused input
ends in its one rejection event and decides nothing else (no opening, no expiry, no pool
step), whichever rule refused it.
"""

from __future__ import annotations

from .account import decide_command
from .catalog import Catalog
from .cdr import Cdr
from .decision import Input
from .draft import Draft
from .events import Event
from .limits import admit
from .refusal import Refused, rejection
from .state import WalletState
from .usage import decide_cdr

__all__ = ["decide", "step"]


def step(state: WalletState, item: Input, catalog: Catalog) -> tuple[list[Event], WalletState]:
    """Decide on ``item`` and return the events with the state they lead to."""
    wallet = catalog.wallets.get(state.wallet_id)
    try:
        if wallet is None:
            raise Refused("unknown_wallet", state.wallet_id)
        ts = admit(catalog, state.wallet_id, item)
        d = Draft(state, item.key, catalog, wallet)
        if isinstance(item, Cdr):
            decide_cdr(d, item, ts)
        else:
            decide_command(d, item, ts)
    except Refused as refusal:
        # Rejections change no state: the wallet stands as it was before the input.
        return [rejection(state.wallet_id, item, refusal.reason, refusal.detail)], state
    return d.events, d.state


def decide(state: WalletState, item: Input, catalog: Catalog) -> list[Event]:
    return step(state, item, catalog)[0]
