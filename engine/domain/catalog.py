"""The catalog: reference data the decider rates against, as validated, immutable Structs.

Everything here is already parsed: money in micro-units, prices in price units (10^-12),
volumes in base units, instants in epoch seconds (UTC). The YAML file format and its
validation live in ``engine.catalog``; the domain only sees this shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import msgspec

from .limits import Limits
from .units import Service

if TYPE_CHECKING:
    from .index import CatalogIndex

PoolKind = Literal["static", "flexible", "stacked", "adaptive"]
Prorate = Literal["none", "daily"]
"""How a recurring charge or an allowance counts a part of a cycle: ``none`` charges (or
grants) the whole cycle; ``daily`` the days of it, rounded once, half-up."""
GrantKind = Literal["top_up", "voucher", "promotion", "refund", "opening"]

# Smaller priority burns first. Free money goes before paid money by default.
DEFAULT_PRIORITY: dict[str, int] = {
    "promotion": 10,
    "voucher": 20,
    "refund": 30,
    "opening": 40,
    "top_up": 40,
}


class Provider(msgspec.Struct, frozen=True, gc=False):
    id: str
    name: str


class Share(msgspec.Struct, frozen=True, gc=False):
    """One provider's weight in a revenue split; weights of a split sum to 100%."""

    provider: str
    weight: int


class Zone(msgspec.Struct, frozen=True, gc=False):
    id: str
    name: str
    networks: tuple[str, ...]
    """``"262-01"`` for one network, ``"262"`` for every network of a country (MCC)."""


class Tier(msgspec.Struct, frozen=True, gc=False):
    """A price that holds while the SIM's cycle volume for the service is below ``up_to``."""

    up_to: int | None
    price: int


class Rate(msgspec.Struct, frozen=True, gc=False):
    """A price per ``per`` base units; several tiers make it graduated over the cycle."""

    tiers: tuple[Tier, ...]
    per: int


class Rounding(msgspec.Struct, frozen=True, gc=False):
    """Volume rounding per record: first increment, next increments, and a minimum.

    Data per KB is ``first=next=1024``; voice 60/60 is ``first=60, next=60``; 60/1 is
    ``first=60, next=1``.
    """

    first: int = 1
    next: int = 1
    minimum: int = 0


class TimeWindow(msgspec.Struct, frozen=True, gc=False):
    """Minutes since local midnight, ``start`` inclusive, ``end`` exclusive; may wrap midnight."""

    start: int
    end: int


class Filter(msgspec.Struct, frozen=True, gc=False):
    """A rating filter: when every given criterion matches, its rate and/or payer apply."""

    name: str
    services: tuple[Service, ...] = ()
    zones: tuple[str, ...] = ()
    apns: tuple[str, ...] = ()
    rats: tuple[str, ...] = ()
    window: TimeWindow | None = None
    rate: Rate | None = None
    payer: str | None = None


class Addon(msgspec.Struct, frozen=True, gc=False):
    id: str
    name: str
    mrc: int
    splits: tuple[Share, ...]


class PlanVersion(msgspec.Struct, frozen=True, gc=False):
    version: int
    effective_from: int
    currency: str
    rates: dict[str, dict[str, Rate]]
    """service -> zone id -> rate."""
    rounding: dict[str, Rounding]
    filters: tuple[Filter, ...] = ()
    mrc: int = 0
    addons: dict[str, Addon] = {}
    restart_fee: int = 0
    tier_scope: Literal["cycle", "zone"] = "cycle"
    """What graduated tiers count: a SIM's volume per service and cycle (``cycle``), or per
    service, cycle and zone (``zone``: roaming starts in the first tier of its zone)."""
    restart_fee_per: Literal["sim", "wallet"] = "sim"
    """``sim``: the fee for each of the wallet's SIMs on this plan that a resume unbars;
    ``wallet``: once per resume, however many of its SIMs are on the plan."""
    prorate_mrc: Prorate = "none"
    """The SIM's MRC for a cycle it was on the plan only part of."""
    prorate_addons: Prorate = "none"
    """Its add-ons' MRCs, likewise."""
    usage_splits: tuple[Share, ...] = ()
    mrc_splits: tuple[Share, ...] = ()
    fee_splits: tuple[Share, ...] = ()

    @property
    def restart_fee_splits(self) -> tuple[Share, ...]:
        """How the restart fee is split: by the fees' split, or the MRC's without one."""
        return self.fee_splits or self.mrc_splits


class Plan(msgspec.Struct, frozen=True, gc=False):
    id: str
    name: str
    versions: tuple[PlanVersion, ...]
    """Sorted by ``effective_from``."""

    def version_at(self, ts: int) -> PlanVersion | None:
        found = None
        for v in self.versions:
            if v.effective_from > ts:
                break
            found = v
        return found


class Bundle(msgspec.Struct, frozen=True, gc=False):
    id: str
    size: int
    valid_from: int
    valid_to: int | None = None


class PoolTier(msgspec.Struct, frozen=True, gc=False):
    size: int
    price: int


class Pool(msgspec.Struct, frozen=True, gc=False):
    id: str
    wallet: str
    kind: PoolKind
    service: Service
    zones: tuple[str, ...]
    allowance: int = 0
    """static: the allowance per cycle."""
    per_sim: int = 0
    """flexible: allowance per SIM active in the cycle."""
    bundles: tuple[Bundle, ...] = ()
    """stacked: drawn in this order, each within its validity."""
    tiers: tuple[PoolTier, ...] = ()
    """adaptive: sizes ascending; the first tier's price is the pool's fee per cycle."""
    price: int = 0
    """static / flexible: the pool's fee per cycle."""
    splits: tuple[Share, ...] = ()
    prorate_allowance: Prorate = "none"
    """static / flexible: ``daily`` counts the days SIMs were in the pool (membership.py)."""
    prorate_fee: Prorate = "none"
    """``daily``: the fee for the days of the cycle on which the pool had a SIM."""


class OpeningGrant(msgspec.Struct, frozen=True, gc=False):
    kind: GrantKind
    amount: int
    priority: int
    expires_at: int | None = None


class AutoTopUp(msgspec.Struct, frozen=True, gc=False):
    below: int
    amount: int


class Wallet(msgspec.Struct, frozen=True, gc=False):
    id: str
    name: str
    currency: str
    overdraft_limit: int = 0
    """How far below zero usage may still be debited (micro-units, >= 0)."""
    suspend_at: int = 0
    """Balance at or below which the wallet is suspended and its SIMs barred."""
    resume_at: int = 0
    """Balance above which a top-up resumes a suspended wallet (> suspend_at)."""
    thresholds: tuple[int, ...] = ()
    """Balance levels that warn once per downward crossing, highest first."""
    auto_top_up: AutoTopUp | None = None
    cycle_anchor_day: int = 1
    opening: tuple[OpeningGrant, ...] = ()


class Subscription(msgspec.Struct, frozen=True, gc=False):
    iccid: str
    wallet: str
    plan: str
    pool: str | None = None
    active_from: int = 0
    active_to: int | None = None
    addons: tuple[str, ...] = ()


class Voucher(msgspec.Struct, frozen=True, gc=False):
    code: str
    wallet: str
    amount: int
    priority: int
    valid_until: int | None = None
    grant_days: int | None = None
    """Days the resulting grant lives after redemption; None: it never expires."""


class Catalog(msgspec.Struct, frozen=True, gc=False):
    providers: dict[str, Provider]
    zones: dict[str, Zone]
    plans: dict[str, Plan]
    pools: dict[str, Pool]
    wallets: dict[str, Wallet]
    subscriptions: dict[str, Subscription]
    vouchers: dict[str, Voucher]
    dedup_window: int = 30 * 86400
    """Seconds a CDR id is remembered; older records are rejected as ``late``."""
    limits: Limits = msgspec.field(default_factory=Limits)
    """How far an input's values may go (``settings``; see limits.py)."""
    networks: dict[str, str] = {}
    """Derived: ``"mcc-mnc"`` or ``"mcc"`` -> zone id."""
    sims_by_wallet: dict[str, tuple[str, ...]] = {}
    """Derived: wallet id -> ICCIDs of its catalog subscriptions, in catalog order."""
    pools_by_wallet: dict[str, tuple[str, ...]] = {}
    """Derived: wallet id -> pool ids."""
    index: CatalogIndex | None = None
    """Derived: tables worked out once from the rest (index.py); ``None`` for a catalog
    not made by ``build_catalog``, which is then read without them."""


def build_catalog(
    providers: dict[str, Provider],
    zones: dict[str, Zone],
    plans: dict[str, Plan],
    pools: dict[str, Pool],
    wallets: dict[str, Wallet],
    subscriptions: dict[str, Subscription],
    vouchers: dict[str, Voucher],
    dedup_window: int = 30 * 86400,
    limits: Limits | None = None,
) -> Catalog:
    """Assemble a catalog and its lookup indexes (the inputs are assumed validated)."""
    from .index import build_index  # the index reads catalog Structs: imported once built

    networks: dict[str, str] = {}
    for zone in zones.values():
        for net in zone.networks:
            networks[net] = zone.id
    sims: dict[str, list[str]] = {w: [] for w in wallets}
    for sub in subscriptions.values():
        sims.setdefault(sub.wallet, []).append(sub.iccid)
    pools_of: dict[str, list[str]] = {w: [] for w in wallets}
    for pool in pools.values():
        pools_of.setdefault(pool.wallet, []).append(pool.id)
    return Catalog(
        providers=providers,
        zones=zones,
        plans=plans,
        pools=pools,
        wallets=wallets,
        subscriptions=subscriptions,
        vouchers=vouchers,
        dedup_window=dedup_window,
        limits=limits if limits is not None else Limits(),
        networks=networks,
        sims_by_wallet={w: tuple(v) for w, v in sims.items()},
        pools_by_wallet={w: tuple(v) for w, v in pools_of.items()},
        index=build_index(plans, zones, pools, subscriptions, wallets),
    )
