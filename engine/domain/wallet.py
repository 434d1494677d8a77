"""decide(state, input, catalog) -> events: every rule of a wallet, and nothing else.

The rules live by job: ``usage`` (a CDR resolved, drawn from its pool, priced, settled),
``account`` (commands: credit, routed and corrected charges, SIMs and plans), ``recurring``
(MRCs and fees per cycle), ``charges`` (money moving and what the balance then triggers).
A decision is drafted (``draft.Draft``): each event applied as it is emitted. A refused input
ends in its one rejection event and decides nothing else (no opening, no expiry, no pool
step), whichever rule refused it.

A wallet the catalog does not list is decided with the terms an ``OpenWallet`` gave it
(``provisioning.terms_wallet``); before that, only an ``OpenWallet`` reaches it. A closed
wallet refuses every input (``wallet_closed``), but a ``CloseWallet`` (it is closed
already) and a clock ``Tick`` (nothing is due), which decide nothing.
"""

from __future__ import annotations

from .account import decide_command
from .catalog import Catalog, Wallet
from .cdr import Cdr
from .commands import CloseWallet, OpenWallet, Tick
from .decision import Input
from .draft import Draft
from .events import Event
from .limits import admit
from .provisioning import open_terms, terms_wallet
from .refusal import Refused, rejection
from .state import WalletState
from .usage import decide_cdr

__all__ = ["decide", "step"]


def step(
    state: WalletState,
    item: Input,
    catalog: Catalog,
    admitted: int | None = None,
    key: str | None = None,
) -> tuple[list[Event], WalletState]:
    """Decide on ``item`` and return the events with the state they lead to.

    ``admitted``: the instant ``limits.admit`` returned for ``item`` when the caller has
    admitted it already (``flow`` does, before it touches a wallet), so it is not worked
    out twice; the same admission with ``opened`` set could not refuse it. ``key``:
    ``item.key``, when the caller has it (``flow`` names the decision by it too)."""
    wallet = catalog.wallets.get(state.wallet_id)
    try:
        if wallet is None:
            wallet = _unlisted(state, item)
        ts = admit(catalog, state.wallet_id, item, opened=True) if admitted is None else admitted
        if state.closed:
            if isinstance(item, CloseWallet | Tick):
                return [], state
            raise Refused("wallet_closed", f"wallet {state.wallet_id} is closed")
        d = Draft(state, item.key if key is None else key, catalog, wallet)
        if isinstance(item, Cdr):
            decide_cdr(d, item, ts)
        else:
            decide_command(d, item, ts)
    except Refused as refusal:
        # Rejections change no state: the wallet stands as it was before the input.
        return [rejection(state.wallet_id, item, refusal.reason, refusal.detail)], state
    return d.events, d.state


def _unlisted(state: WalletState, item: Input) -> Wallet:
    """The wallet the catalog does not list: as opened by command, or as this
    ``OpenWallet`` would open it."""
    if state.terms is not None:
        return terms_wallet(state.wallet_id, state.terms)
    if isinstance(item, OpenWallet) and not state.opened:
        return terms_wallet(state.wallet_id, open_terms(item))
    raise Refused("unknown_wallet", state.wallet_id)


def decide(state: WalletState, item: Input, catalog: Catalog) -> list[Event]:
    return step(state, item, catalog)[0]
