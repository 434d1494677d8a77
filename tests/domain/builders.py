"""Small builders for domain tests: catalogs in Python, inputs, and a given/when harness.

Everything is built from the domain Structs with ``build_catalog`` (never the YAML loader):
money via ``parse_money``, prices via ``parse_price``, sizes in base units, instants in epoch
seconds. Defaults describe one quiet EUR wallet ``w1`` with one SIM on a plain data/SMS/voice
plan, so a test only spells out what it is about.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal, TypeVar

import msgspec

from engine.domain import Catalog, Cdr, Event, WalletState, fold, initial_state, step
from engine.domain.catalog import (
    Addon,
    AutoTopUp,
    Bundle,
    Filter,
    OpeningGrant,
    Plan,
    PlanVersion,
    Pool,
    PoolTier,
    Provider,
    Rate,
    Rounding,
    Share,
    Subscription,
    Tier,
    Voucher,
    Wallet,
    Zone,
    build_catalog,
)
from engine.domain.commands import (
    AdoptCatalog,
    ApplyCharge,
    AttachSim,
    ChangePlan,
    CloseWallet,
    Command,
    DetachSim,
    OpenWallet,
    RedeemVoucher,
    ResumeWallet,
    SuspendWallet,
    Tick,
    TopUp,
    WriteOffDebt,
)
from engine.domain.events import Charged, UsageRated
from engine.domain.money import parse_money, parse_price

KB = 1024
MB = 1024**2
GB = 1024**3
DAY = 86400

NEVER_SUSPEND = -(10**15)
"""A suspension level no test balance reaches: keeps suspension out of unrelated tests."""

SIM1 = "8900000000000000001"
SIM2 = "8900000000000000002"
SIM3 = "8900000000000000003"


def ts(text: str) -> int:
    """Epoch seconds of an RFC 3339 instant: ``ts("2026-01-10T12:00:00Z")``."""
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def dt(epoch: int, offset_minutes: int = 0) -> datetime:
    """A timezone-aware datetime for ``epoch``, shown in the given UTC offset."""
    tz = UTC if offset_minutes == 0 else timezone(timedelta(minutes=offset_minutes))
    return datetime.fromtimestamp(epoch, tz)


T0 = ts("2026-01-05T00:00:00Z")
"""A quiet instant inside the January 2026 cycle (anchor day 1)."""

EUR = parse_money


# -- catalog pieces --------------------------------------------------------------------


def rate(price: str, per: int = 1) -> Rate:
    """A flat rate: ``price`` (a decimal string) per ``per`` base units."""
    return Rate((Tier(None, parse_price(price)),), per)


def tiered(per: int, *tiers: tuple[int | None, str]) -> Rate:
    """Graduated tiers ``(up_to, price)``: the last ``up_to`` is ``None``."""
    return Rate(tuple(Tier(up_to, parse_price(p)) for up_to, p in tiers), per)


DEFAULT_RATES: dict[str, dict[str, Rate]] = {
    "data": {"EU": rate("0.01", MB), "US": rate("0.10", MB)},
    "sms": {"EU": rate("0.05"), "US": rate("0.20")},
    "voice": {"EU": rate("0.12", 60), "US": rate("0.60", 60)},
    "event": {"EU": rate("0.001"), "US": rate("0.002")},
}

DEFAULT_ZONES: dict[str, Zone] = {
    "EU": Zone("EU", "Europe", ("262", "208-01", "208-10")),
    "US": Zone("US", "United States", ("310",)),
    "PREMIUM": Zone("PREMIUM", "Premium network", ("262-07",)),
}
"""MCC 262 is Europe except network 262-07; 208 only for two networks; 999 is nowhere."""

PROVIDERS: dict[str, Provider] = {
    "op": Provider("op", "Operator"),
    "platform": Provider("platform", "Platform"),
    "reseller": Provider("reseller", "Reseller"),
}

SPLITS = (Share("op", 70), Share("platform", 20), Share("reseller", 10))


def version(
    *,
    version: int = 1,
    effective_from: int = 0,
    currency: str = "EUR",
    rates: dict[str, dict[str, Rate]] | None = None,
    rounding: dict[str, Rounding] | None = None,
    filters: Sequence[Filter] = (),
    mrc: str = "0",
    addons: Iterable[Addon] = (),
    restart_fee: str = "0",
    restart_fee_per: Literal["sim", "wallet"] = "sim",
    tier_scope: Literal["cycle", "zone"] = "cycle",
    prorate_mrc: Literal["none", "daily"] = "none",
    prorate_addons: Literal["none", "daily"] = "none",
    usage_splits: tuple[Share, ...] = SPLITS,
    mrc_splits: tuple[Share, ...] = SPLITS,
    fee_splits: tuple[Share, ...] = (),
) -> PlanVersion:
    return PlanVersion(
        version=version,
        effective_from=effective_from,
        currency=currency,
        rates=DEFAULT_RATES if rates is None else rates,
        rounding={} if rounding is None else rounding,
        filters=tuple(filters),
        mrc=parse_money(mrc),
        addons={a.id: a for a in addons},
        restart_fee=parse_money(restart_fee),
        restart_fee_per=restart_fee_per,
        tier_scope=tier_scope,
        prorate_mrc=prorate_mrc,
        prorate_addons=prorate_addons,
        usage_splits=usage_splits,
        mrc_splits=mrc_splits,
        fee_splits=fee_splits,
    )


def plan(plan_id: str = "basic", *versions: PlanVersion, **one_version: Any) -> Plan:
    """A plan from explicit versions, or one version built from keyword arguments."""
    vs = versions or (version(**one_version),)
    return Plan(plan_id, plan_id.title(), tuple(sorted(vs, key=lambda v: v.effective_from)))


def addon(addon_id: str, mrc: str) -> Addon:
    return Addon(addon_id, addon_id.title(), parse_money(mrc), SPLITS)


def opening(
    amount: str, *, kind: str = "opening", priority: int = 40, expires_at: int | None = None
) -> OpeningGrant:
    return OpeningGrant(kind, parse_money(amount), priority, expires_at)  # type: ignore[arg-type]


def wallet(
    wallet_id: str = "w1",
    *,
    currency: str = "EUR",
    opening: Sequence[OpeningGrant] | None = None,
    overdraft: str = "0",
    suspend_at: int = NEVER_SUSPEND,
    resume_at: int | None = None,
    thresholds: Sequence[str] = (),
    auto_top_up: tuple[str, str] | None = None,
    anchor: int = 1,
) -> Wallet:
    """A wallet; by default 100 EUR of opening credit that never expires."""
    grants = (
        (OpeningGrant("opening", parse_money("100"), 40),) if opening is None else tuple(opening)
    )
    return Wallet(
        id=wallet_id,
        name=wallet_id.upper(),
        currency=currency,
        overdraft_limit=parse_money(overdraft),
        suspend_at=suspend_at,
        resume_at=suspend_at + 1 if resume_at is None else resume_at,
        thresholds=tuple(parse_money(t) for t in thresholds),
        auto_top_up=None
        if auto_top_up is None
        else AutoTopUp(parse_money(auto_top_up[0]), parse_money(auto_top_up[1])),
        cycle_anchor_day=anchor,
        opening=grants,
    )


def sub(
    iccid: str = SIM1,
    *,
    wallet: str = "w1",
    plan: str = "basic",
    pool: str | None = None,
    active_from: int = 0,
    active_to: int | None = None,
    addons: tuple[str, ...] = (),
) -> Subscription:
    return Subscription(iccid, wallet, plan, pool, active_from, active_to, addons)


def pool(
    kind: str,
    pool_id: str = "p1",
    *,
    wallet: str = "w1",
    service: str = "data",
    zones: tuple[str, ...] = ("EU",),
    price: str = "0",
    splits: tuple[Share, ...] = SPLITS,
    **sizes: Any,
) -> Pool:
    """A pool of ``kind``; ``sizes`` are its allowance / per_sim / bundles / tiers."""
    return Pool(
        pool_id,
        wallet,
        kind,  # type: ignore[arg-type]
        service,  # type: ignore[arg-type]
        zones,
        price=parse_money(price),
        splits=splits,
        **sizes,
    )


def static_pool(pool_id: str = "p1", allowance: int = 10 * MB, **kw: Any) -> Pool:
    return pool("static", pool_id, allowance=allowance, **kw)


def flexible_pool(pool_id: str = "p1", per_sim: int = 5 * MB, **kw: Any) -> Pool:
    return pool("flexible", pool_id, per_sim=per_sim, **kw)


def stacked_pool(pool_id: str = "p1", bundles: Sequence[Bundle] = (), **kw: Any) -> Pool:
    return pool("stacked", pool_id, bundles=tuple(bundles), **kw)


def adaptive_pool(pool_id: str = "p1", tiers: Sequence[tuple[int, str]] = (), **kw: Any) -> Pool:
    ladder = tuple(PoolTier(size, parse_money(p)) for size, p in tiers)
    return pool("adaptive", pool_id, tiers=ladder, **kw)


def voucher(
    code: str,
    amount: str,
    *,
    wallet: str = "w1",
    priority: int = 20,
    valid_until: int | None = None,
    grant_days: int | None = None,
) -> Voucher:
    return Voucher(code, wallet, parse_money(amount), priority, valid_until, grant_days)


def catalog(
    *,
    plans: Sequence[Plan] | None = None,
    wallets: Sequence[Wallet] | None = None,
    subs: Sequence[Subscription] | None = None,
    pools: Sequence[Pool] = (),
    vouchers: Sequence[Voucher] = (),
    zones: dict[str, Zone] | None = None,
    dedup_window: int = 30 * DAY,
) -> Catalog:
    """One wallet ``w1`` with SIM1 on plan ``basic`` unless told otherwise."""
    return build_catalog(
        providers=PROVIDERS,
        zones=DEFAULT_ZONES if zones is None else zones,
        plans={p.id: p for p in (plans if plans is not None else (plan(),))},
        pools={p.id: p for p in pools},
        wallets={w.id: w for w in (wallets if wallets is not None else (wallet(),))},
        subscriptions={s.iccid: s for s in (subs if subs is not None else (sub(),))},
        vouchers={v.code: v for v in vouchers},
        dedup_window=dedup_window,
    )


# -- inputs ----------------------------------------------------------------------------


def cdr(
    cdr_id: str,
    volume: int,
    *,
    at: int = T0,
    iccid: str = SIM1,
    service: str = "data",
    network: str = "262-01",
    offset: int = 0,
    apn: str | None = None,
    rat: str | None = None,
    source: str | None = None,
) -> Cdr:
    """A CDR; ``offset`` is the record's own UTC offset in minutes (same instant ``at``)."""
    mcc, _, mnc = network.partition("-")
    return Cdr(
        cdr_id=cdr_id,
        iccid=iccid,
        service=service,  # type: ignore[arg-type]
        started_at=dt(at, offset),
        volume=volume,
        mcc=mcc,
        mnc=mnc,
        apn=apn,
        rat=rat,  # type: ignore[arg-type]
        source=source,
    )


def top_up(
    command_id: str,
    amount: str,
    *,
    at: int = T0,
    wallet: str = "w1",
    currency: str = "EUR",
    kind: str = "top_up",
    priority: int | None = None,
    expires_at: int | None = None,
) -> TopUp:
    return TopUp(
        command_id=command_id,
        wallet_id=wallet,
        at=dt(at),
        amount=amount,
        currency=currency,
        kind=kind,  # type: ignore[arg-type]
        priority=priority,
        expires_at=None if expires_at is None else dt(expires_at),
    )


def tick(command_id: str, at: int, *, wallet: str = "w1") -> Tick:
    return Tick(command_id=command_id, wallet_id=wallet, at=dt(at))


def redeem(command_id: str, code: str, *, at: int = T0, wallet: str = "w1") -> RedeemVoucher:
    return RedeemVoucher(command_id=command_id, wallet_id=wallet, at=dt(at), code=code)


def change_plan(
    command_id: str, iccid: str, plan_id: str, *, at: int, wallet: str = "w1"
) -> ChangePlan:
    return ChangePlan(command_id=command_id, wallet_id=wallet, at=dt(at), iccid=iccid, plan=plan_id)


def attach(
    command_id: str,
    iccid: str,
    plan_id: str = "basic",
    *,
    at: int,
    wallet: str = "w1",
    pool: str | None = None,
    addons: tuple[str, ...] = (),
) -> AttachSim:
    return AttachSim(
        command_id=command_id,
        wallet_id=wallet,
        at=dt(at),
        iccid=iccid,
        plan=plan_id,
        pool=pool,
        addons=addons,
    )


def detach(command_id: str, iccid: str, *, at: int, wallet: str = "w1") -> DetachSim:
    return DetachSim(command_id=command_id, wallet_id=wallet, at=dt(at), iccid=iccid)


def apply_charge(
    command_id: str,
    amount: int,
    *,
    at: int = T0,
    wallet: str = "w1",
    source: str = "w2",
    cdr_id: str = "c1",
) -> ApplyCharge:
    return ApplyCharge(
        command_id=command_id,
        wallet_id=wallet,
        at=dt(at),
        source_wallet=source,
        cdr_id=cdr_id,
        amount=amount,
    )


def open_wallet(
    command_id: str,
    *,
    at: int = T0,
    wallet: str = "w9",
    currency: str = "EUR",
    revision: int = 0,
    **terms: Any,
) -> OpenWallet:
    """An ``OpenWallet`` for a wallet the catalog does not list (``w9`` by default)."""
    return OpenWallet(
        command_id=command_id,
        wallet_id=wallet,
        at=dt(at),
        currency=currency,
        revision=revision,
        **terms,
    )


def close_wallet(
    command_id: str, *, at: int = T0, wallet: str = "w1", reason: str = "contract ended"
) -> CloseWallet:
    return CloseWallet(command_id=command_id, wallet_id=wallet, at=dt(at), reason=reason)


def suspend_wallet(
    command_id: str, *, at: int = T0, wallet: str = "w1", reason: str = "fraud check"
) -> SuspendWallet:
    return SuspendWallet(command_id=command_id, wallet_id=wallet, at=dt(at), reason=reason)


def resume_wallet(
    command_id: str, *, at: int = T0, wallet: str = "w1", reason: str = "cleared"
) -> ResumeWallet:
    return ResumeWallet(command_id=command_id, wallet_id=wallet, at=dt(at), reason=reason)


def adopt_catalog(
    command_id: str, revision: int, *, at: int = T0, wallet: str = "w1", digest: str = "d" * 64
) -> AdoptCatalog:
    return AdoptCatalog(
        command_id=command_id, wallet_id=wallet, at=dt(at), revision=revision, digest=digest
    )


Input = Cdr | Command


# -- given / when / then ---------------------------------------------------------------


class Wallets:
    """Drives ``step`` for one wallet: ``given`` inputs, then ``when`` one input → its events.

    It keeps every event, and checks after each decision that the state ``step`` ended in is
    exactly ``fold(evolve, events)`` from the initial state (the event-sourcing contract).
    """

    def __init__(self, cat: Catalog, wallet_id: str = "w1") -> None:
        self.catalog = cat
        self.wallet_id = wallet_id
        self.state: WalletState = initial_state(wallet_id)
        self.history: list[Event] = []

    def given(self, *inputs: Input) -> Wallets:
        """Inputs decided before the one under test."""
        for item in inputs:
            self.when(item)
        return self

    def given_events(self, *events: Event) -> Wallets:
        """Events recorded before: the state is their fold, as after a restart."""
        self.history.extend(events)
        self.state = fold(self.state, list(events))
        return self

    def when(self, item: Input) -> list[Event]:
        events, self.state = step(self.state, item, self.catalog)
        self.history.extend(events)
        assert fold(initial_state(self.wallet_id), self.history) == self.state
        return events

    @property
    def balance(self) -> int:
        return self.state.balance


E = TypeVar("E")


def of(events: Iterable[object], kind: type[E]) -> list[E]:
    """The events of one type, in order."""
    return [e for e in events if isinstance(e, kind)]


def one(events: Iterable[object], kind: type[E]) -> E:
    found = of(events, kind)
    assert len(found) == 1, f"expected one {kind.__name__}, got {found}"
    return found[0]


def types(events: Iterable[object]) -> list[str]:
    return [type(e).__name__ for e in events]


def paid(event: UsageRated | Charged) -> int:
    """What settled a charge: debits + overdraft + uncollected."""
    return sum(d.amount for d in event.debits) + event.overdraft + event.uncollected


def debits(event: UsageRated | Charged) -> list[tuple[str, int]]:
    return [(d.grant_id, d.amount) for d in event.debits]


def encode(events: Iterable[object]) -> bytes:
    return msgspec.json.encode(list(events))


def write_off(
    command_id: str, amount: str | None, reason: str, *, at: int = T0, wallet_id: str = "w1"
) -> WriteOffDebt:
    return WriteOffDebt(
        command_id=command_id, wallet_id=wallet_id, at=dt(at), reason=reason, amount=amount
    )
