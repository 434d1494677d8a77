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

**Routes.** Which wallet an ICCID's usage goes to is the stint of its SIM that covers the
CDR's start (domain/routing.py): the SIM-route table (``routes``: what commands moved) over
the catalog's subscriptions. The offline pipeline keeps that table from the decisions it
makes; a stream worker reads the one every owner writes (stream/directory.py), and holds a
CDR no route covers yet for a while (stream/holding.py).

**Revisions.** A wallet is decided with the catalog revision it adopted (``revisions``:
revision -> catalog; a wallet that adopted none is on the first, revision 1), and an
``AdoptCatalog`` with the revision it adopts (`pick`). Each decision records it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import NamedTuple, cast

from .codec import Rejected, encode, raw_fields
from .domain import ApplyCharge, Catalog, Cdr, Command, Event, WalletState, step
from .domain.commands import AdoptCatalog, OpenWallet
from .domain.decision import NOWHERE, Decision, Origin, decision
from .domain.events import NETWORK_ACTIONS, UsageRated
from .domain.limits import admit
from .domain.refusal import Refused
from .domain.routing import Routes, routed_charge, wallet_of

__all__ = [
    "CATALOG_ROUTES",
    "FollowUps",
    "MissingRevision",
    "Outcome",
    "Refused",
    "Revisions",
    "Routes",
    "admit",
    "catalog_at",
    "decide",
    "follow_ups",
    "latest",
    "pick",
    "refused",
    "route",
    "run",
]


CATALOG_ROUTES: Routes = MappingProxyType({})
"""No moves: every ICCID goes to its catalog subscription's wallet."""

Revisions = Mapping[int, Catalog]
"""Catalog revision -> the catalog; 1 is the first."""


class MissingRevision(LookupError):
    """A wallet is on a catalog revision this process does not have."""


def pick(revisions: Revisions, state: WalletState, item: Cdr | Command) -> tuple[int, Catalog]:
    """The revision ``item`` is decided with in ``state`` (0 stands for the first) and its
    catalog: the wallet's own, or for an ``AdoptCatalog`` the one it adopts (for an
    ``OpenWallet``, the one the wallet opens on)."""
    revision = revision_for(state, item)
    return revision, catalog_at(revisions, revision)


_NAMING_A_REVISION = frozenset({AdoptCatalog, OpenWallet})
"""The inputs decided with the revision they name (exact types: inputs are decoded as one
of the contract's classes, never a subclass)."""


def revision_for(state: WalletState, item: Cdr | Command) -> int:
    """The revision ``item`` is decided with in ``state`` (0 stands for the first)."""
    # Asked once per input: a set lookup of the type costs a fraction of an isinstance() of
    # a union, which builds the union and asks each class on every call.
    if type(item) in _NAMING_A_REVISION:
        return cast(AdoptCatalog | OpenWallet, item).revision
    return state.revision


def catalog_at(revisions: Revisions, revision: int) -> Catalog:
    """The catalog of ``revision`` (0 stands for the first)."""
    catalog = revisions.get(max(revision, 1))
    if catalog is None:
        raise MissingRevision(f"catalog revision {revision} is not known here")
    return catalog


def latest(revisions: Revisions) -> Catalog:
    """The newest revision: what routes a CDR (a SIM new in it is routed by it)."""
    return revisions[max(revisions)]


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
    revision: int = 0,
    admitted: int | None = None,
) -> tuple[Decision, WalletState]:
    """The decision of ``wallet_id`` (in ``state``) on an admitted input with ``catalog``
    (revision ``revision``), and the state it leads to. A decision may hold no event (a
    retried command, a tick with nothing due). ``admitted``: what ``admit`` returned for
    it, when the caller asked (``wallet.step``)."""
    key = item.key
    events, after = step(state, item, catalog, admitted, key)
    return decision(wallet_id, item, events, origin, revision, key), after


class FollowUps(NamedTuple):
    actions: tuple[Event, ...]
    """Bar / unbar SIMs, for ``network.actions``."""
    charges: tuple[ApplyCharge, ...]
    """Split billing: the usage's debits, as commands to the paying wallets."""


NO_FOLLOW_UPS = FollowUps((), ())


def follow_ups(events: Sequence[Event]) -> FollowUps:
    """What a decision's ``events`` ask of others, in their order."""
    if len(events) == 1 and type(events[0]) is UsageRated:  # most decisions: one CDR rated
        charge = routed_charge(events[0])
        return NO_FOLLOW_UPS if charge is None else FollowUps((), (charge,))
    actions: list[Event] = []
    charges: list[ApplyCharge] = []
    for e in events:
        if isinstance(e, NETWORK_ACTIONS):
            actions.append(e)
        elif isinstance(e, UsageRated) and (charge := routed_charge(e)) is not None:
            charges.append(charge)
    return FollowUps(tuple(actions), tuple(charges)) if actions or charges else NO_FOLLOW_UPS


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
    revisions: Revisions,
    routes: Routes,
    state_of: Callable[[str], WalletState],
    item: Cdr | Command,
) -> Outcome | Rejected:
    """The whole flow of one input in one process: route, admit, decide, and decide its
    routed charges in their payers' wallets at once. Nothing is kept here: the caller keeps
    ``states`` only once all of it is decided, so a routed charge failing after its cause
    leaves the cause's wallet as it was."""
    if isinstance(item, Cdr):
        target = route(latest(revisions), routes, item)
        if isinstance(target, Rejected):
            return target
    else:
        target = item.wallet_id
    states: dict[str, WalletState] = {}
    state = state_of(target)
    revision, catalog = pick(revisions, state, item)
    try:
        ts = admit(catalog, target, item, opened=state.terms is not None)
    except Refused as refusal:
        return refused(refusal, "", target, item)
    first, states[target] = decide(state, target, item, catalog, NOWHERE, revision, ts)
    decisions = [first]
    for charge in follow_ups(first.events).charges:
        payer = charge.wallet_id
        before = states.get(payer)
        before = before if before is not None else state_of(payer)
        revision, catalog = pick(revisions, before, charge)
        made, states[payer] = decide(before, payer, charge, catalog, NOWHERE, revision)
        decisions.append(made)
    return Outcome(decisions, states)
