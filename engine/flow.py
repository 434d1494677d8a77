"""The flow of one input, written once: route → decide → follow-ups.

- **route**: a CDR goes to the wallet its ICCID belongs to (`route`); a command names its
  wallet. **Admission** (`admit`) then refuses an input no wallet may take (an unknown
  wallet, an instant out of bounds) before any wallet sees it.
- **decide**: the wallet's pure decider turns the input into a `Decision` (`decide`).
- **follow-ups**: what a decision asks of others (`follow_ups`): network actions (bar and
  unbar SIMs) and the routed charges of split billing, as ``ApplyCharge`` commands to the
  paying wallets.

The offline pipeline and the tests run it all in one process (`run`: the routed charges
are decided at once, in the payers' wallets). The stream runs the same functions across
topics: `route` in the enrich agent, `admit`, `decide` and `follow_ups` in the rate agent,
whose routed charges reach their payers' owners through ``wallet.commands``. Replay decides
its adjustments with `decide`. A refusal becomes a rejection record with `refused`.

**Routes.** Which wallet an ICCID's usage goes to is the catalog's subscription, unless a
command moved the SIM (``routes``: ICCID -> wallet). The offline pipeline sees every
decision, so it passes the moves it has seen; a stream worker's enrich does not (the moves
are decided on other partitions), so it passes `CATALOG_ROUTES` and a moved SIM's usage
still reaches the wallet of its catalog subscription. A SIM-route table shared by every
worker will close that gap; until then the difference is this one parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple

from .codec import Rejected, encode, raw_fields
from .domain import ApplyCharge, Catalog, Cdr, Command, Event, WalletState, step
from .domain.decision import NOWHERE, Decision, Origin, decision
from .domain.events import NETWORK_ACTIONS
from .domain.limits import admit
from .domain.refusal import Refused
from .domain.routing import routed_charges, wallet_of

__all__ = [
    "CATALOG_ROUTES",
    "FollowUps",
    "Outcome",
    "Refused",
    "Routes",
    "admit",
    "decide",
    "follow_ups",
    "refused",
    "route",
    "run",
]

Routes = Mapping[str, str]
"""ICCID -> the wallet a command moved the SIM to."""

CATALOG_ROUTES: Routes = MappingProxyType({})
"""No moves: every ICCID goes to its catalog subscription's wallet (the stream's routes)."""


def route(
    catalog: Catalog, routes: Routes, cdr: Cdr, origin: str = "", raw: bytes | None = None
) -> str | Rejected:
    """The wallet that rates ``cdr``, or its ``unknown_sim`` rejection (with ``raw`` if known)."""
    wallet = wallet_of(catalog, routes, cdr.iccid, int(cdr.started_at.timestamp()))
    if wallet is not None:
        return wallet
    fields = raw_fields(raw) if raw is not None else {}
    return Rejected(
        "unknown_sim",
        f"no subscription for ICCID {cdr.iccid}",
        origin,
        cdr_id=cdr.cdr_id,
        iccid=cdr.iccid,
        **fields,
    )


def decide(
    state: WalletState,
    wallet_id: str,
    item: Cdr | Command,
    catalog: Catalog,
    origin: Origin = NOWHERE,
) -> tuple[Decision, WalletState]:
    """The decision of ``wallet_id`` (in ``state``) on an admitted input, and the state it
    leads to. A decision may hold no event (a retried command, a tick with nothing due)."""
    events, after = step(state, item, catalog)
    return decision(wallet_id, item, events, origin), after


class FollowUps(NamedTuple):
    actions: tuple[Event, ...]
    """Bar / unbar SIMs, for ``network.actions``."""
    charges: tuple[ApplyCharge, ...]
    """Split billing: the usage's debits, as commands to the paying wallets."""


NO_FOLLOW_UPS = FollowUps((), ())


def follow_ups(decision: Decision) -> FollowUps:
    """What ``decision`` asks of others, in the order of its events."""
    actions = tuple(e for e in decision.events if isinstance(e, NETWORK_ACTIONS))
    charges = tuple(routed_charges(decision.events))
    return FollowUps(actions, charges) if actions or charges else NO_FOLLOW_UPS


def refused(refusal: Refused, origin: str, wallet_id: str, item: Cdr | Command) -> Rejected:
    """The rejection record of an input admission refused: it reached no wallet."""
    cdr_id, iccid = (item.cdr_id, item.iccid) if isinstance(item, Cdr) else (None, None)
    return Rejected(
        refusal.reason,
        refusal.detail,
        origin,
        cdr_id=cdr_id,
        iccid=iccid,
        wallet_id=wallet_id,
        **raw_fields(encode(item)),
    )


class Outcome(NamedTuple):
    decisions: list[Decision]
    """The input's decision, then those of the routed charges it led to."""
    states: dict[str, WalletState]
    """The state of each wallet they decided in, after them."""


def run(
    catalog: Catalog,
    routes: Routes,
    state_of: Callable[[str], WalletState],
    item: Cdr | Command,
) -> Outcome | Rejected:
    """The whole flow of one input in one process: route, admit, decide, and decide its
    routed charges in their payers' wallets at once. Nothing is kept here: the caller keeps
    ``states`` only once all of it is decided, so a routed charge failing after its cause
    leaves the cause's wallet as it was."""
    if isinstance(item, Cdr):
        target = route(catalog, routes, item)
        if isinstance(target, Rejected):
            return target
    else:
        target = item.wallet_id
    before = state_of(target)
    try:
        admit(catalog, target, item, opened=before.terms is not None)
    except Refused as refusal:
        return refused(refusal, "", target, item)
    states: dict[str, WalletState] = {}
    first, states[target] = decide(before, target, item, catalog)
    decisions = [first]
    for charge in follow_ups(first).charges:
        payer = charge.wallet_id
        state = states.get(payer)
        made, states[payer] = decide(
            state if state is not None else state_of(payer), payer, charge, catalog
        )
        decisions.append(made)
    return Outcome(decisions, states)
