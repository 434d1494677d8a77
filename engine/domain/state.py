"""The state of one wallet: everything the decider needs, folded from the wallet's events.

Immutable all the way down: Structs are frozen and the maps are persistent
(``immutables.Map``; the dedup generations are ``keylog.KeyLog``, a persistent map that
grows by appending), so ``evolve`` returns a new state sharing most of the old one and a
state handed out can never change under its holder.
"""

from __future__ import annotations

from typing import Any

import msgspec
from immutables import Map

from .catalog import Subscription
from .events import WalletTerms
from .keylog import NO_KEYS, KeyLog

NEVER = 2**62
"""Sorts after every real instant: the expiry of a grant that never expires."""


class Grant(msgspec.Struct, frozen=True, gc=False):
    """A live grant. Burn order: ``priority``, then earliest expiry, then oldest (``seq``)."""

    id: str
    kind: str
    remaining: int
    priority: int
    expires_at: int | None
    seq: int

    @property
    def burn_key(self) -> tuple[int, int, int]:
        return (self.priority, NEVER if self.expires_at is None else self.expires_at, self.seq)


EMPTY: Map[Any, Any] = Map()


class WalletState(msgspec.Struct, frozen=True, gc=False):
    wallet_id: str
    opened: bool = False
    grants: tuple[Grant, ...] = ()
    """Live grants in burn order."""
    credit: int = 0
    """Sum of the live grants' remaining amounts."""
    debt: int = 0
    """Overdraft in use (>= 0)."""
    uncollected: int = 0
    """Usage rated beyond the overdraft limit: carried by the network, not collectable."""
    suspended: bool = False
    fired: frozenset[int] = frozenset()
    """Threshold levels that fired and wait for a top-up to re-arm."""
    auto_top_up_fired: bool = False
    grant_seq: int = 0
    attached: Map[str, Subscription] = EMPTY
    """SIMs attached by command (over the catalog's subscriptions)."""
    detached: Map[str, int] = EMPTY
    """ICCID -> instant it left this wallet."""
    plan_changes: Map[str, tuple[tuple[int, str], ...]] = EMPTY
    """ICCID -> (from, plan) changes, in order."""
    past: Map[str, tuple[Subscription, ...]] = EMPTY
    """ICCID -> its earlier stints by command in this wallet, each closed (``active_to``), so
    a SIM re-attached to another pool still counts where it was before."""
    catalog_until: Map[str, int] = EMPTY
    """ICCID -> instant its catalog subscription gave way to an ``AttachSim`` (the end of
    the catalog's stint, which a later attachment would otherwise hide)."""
    pool_used: Map[tuple[str, str], int] = EMPTY
    """(pool, bucket) -> volume drawn; a bucket is a cycle id, or a bundle id."""
    pool_overage: Map[tuple[str, str], tuple[int, int, tuple[tuple[str, int], ...]]] = EMPTY
    """(pool, cycle) -> (volume, amount, revenue lines) rated beyond the pool's allowance in
    its zones and service, until the cycle closes (what a true-up may credit back)."""
    pool_tier: Map[tuple[str, str], int] = EMPTY
    """(adaptive pool, cycle) -> tier index reached."""
    tier_used: Map[tuple[str, str, str], int] = EMPTY
    """(ICCID, service, cycle) -> charged volume, for graduated tiers."""
    recurring: Map[str, str] = EMPTY
    """Recurring-charge ref -> last cycle id charged (MRCs exactly once per cycle)."""
    vouchers: frozenset[str] = frozenset()
    seen: KeyLog = NO_KEYS
    """Input keys (CDRs, routed charges) of the current dedup generation -> instant."""
    seen_before: KeyLog = NO_KEYS
    """The previous generation: together with ``seen`` it covers at least one window."""
    commands: Map[str, int] = EMPTY
    """Keys of commands that moved money -> instant: a retried top-up credits once. A
    routed charge's key goes once ``retained_since`` passes its instant (``retention``)."""
    dedup_window: int = 30 * 86400
    generation_start: int = 0
    before_start: int = 0
    """Start of the ``seen_before`` generation (0: there is none yet)."""
    retained_since: int = 0
    """CDRs older than this may have had their ids forgotten: they are rejected as late."""
    watermark: int = 0
    """Latest input instant seen."""
    terms: WalletTerms | None = None
    """Set when an ``OpenWallet`` command opened the wallet (it is not the catalog's)."""
    closed: bool = False
    held: bool = False
    """Suspended by hand: a top-up does not resume it (``WalletHeld`` / ``WalletReleased``)."""
    revision: int = 0
    """The catalog revision the wallet is decided with (0: the first)."""

    @property
    def balance(self) -> int:
        return self.credit - self.debt


def initial_state(wallet_id: str) -> WalletState:
    return WalletState(wallet_id=wallet_id)
