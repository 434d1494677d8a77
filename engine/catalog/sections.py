"""The sections other than plans: settings, providers, zones, wallets, pools, vouchers.

Each reader takes the section's raw value, reports what is wrong, and returns the objects it
could build keyed by id. Sections are read in dependency order (see ``loader``), so each
reference is checked against the ids declared before it.
"""

from __future__ import annotations

from engine.domain.catalog import (
    DEFAULT_PRIORITY,
    AutoTopUp,
    Bundle,
    GrantKind,
    OpeningGrant,
    Pool,
    PoolKind,
    PoolTier,
    Provider,
    Voucher,
    Wallet,
    Zone,
)
from engine.domain.money import format_money
from engine.domain.units import SERVICES, Service

from .limits import LIMIT_KEYS, MAX_PRIORITY
from .prorate import POOL_KINDS as POOL_PRORATE
from .prorate import prorate
from .reader import Ctx, Fields
from .splits import split_field
from .values import (
    amount,
    choice,
    currency,
    ident,
    instant,
    int_between,
    int_capped,
    money,
    network,
    positive_amount,
    size,
    text,
)

DAY = 86400
POOL_KINDS: tuple[PoolKind, ...] = ("static", "flexible", "stacked", "adaptive")
GRANT_KINDS: tuple[GrantKind, ...] = ("top_up", "voucher", "promotion", "refund", "opening")
WALLET_KEYS = (
    "id",
    "name",
    "currency",
    "overdraft_limit",
    "suspend_at",
    "resume_at",
    "thresholds",
    "auto_top_up",
    "cycle_anchor_day",
    "opening_balance",
)
POOL_KEYS = (
    "id",
    "wallet",
    "kind",
    "service",
    "zones",
    "allowance",
    "per_sim",
    "bundles",
    "tiers",
    "price",
    "prorate",
    "splits",
)
# The fields only some pool kinds take; any other kind given one of them is an issue.
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "static": ("allowance", "price"),
    "flexible": ("per_sim", "price"),
    "stacked": ("bundles",),
    "adaptive": ("tiers",),
}
VOUCHER_KEYS = ("code", "wallet", "amount", "priority", "valid_until", "grant_days")


def new_id(ctx: Ctx, f: Fields, kind: str, key: str = "id") -> str | None:
    """The object's id when present and not taken by an earlier one of the same kind."""
    value = f.req(key, ident)
    if value is None or not ctx.declare(kind, f.at(key), value):
        return None
    return value


def read_settings(ctx: Ctx, value: object) -> int:
    """The dedup window in seconds."""
    if value is None:
        return 30 * DAY
    f = ctx.mapping("settings", value, ("dedup_window_days", *LIMIT_KEYS))
    if f is None:
        return 30 * DAY
    return f.opt("dedup_window_days", int_capped(1, 3650), 30) * DAY


def read_providers(ctx: Ctx, value: object) -> dict[str, Provider]:
    out: dict[str, Provider] = {}
    for path, item in ctx.items("providers", value):
        f = ctx.mapping(path, item, ("id", "name"))
        if f is None:
            continue
        provider_id = new_id(ctx, f, "provider")
        name = f.opt("name", text, provider_id or "")
        if provider_id is not None:
            out[provider_id] = Provider(provider_id, name)
    return out


def read_zones(ctx: Ctx, value: object) -> dict[str, Zone]:
    out: dict[str, Zone] = {}
    owner: dict[str, tuple[str, str]] = {}  # network -> (zone id, path), across zones
    for path, item in ctx.items("zones", value):
        f = ctx.mapping(path, item, ("id", "name", "networks"))
        if f is None:
            continue
        zone_id = new_id(ctx, f, "zone")
        name = f.opt("name", text, zone_id or "")
        if not f.has("networks"):
            ctx.issue(f.at("networks"), "missing required key 'networks'")
        elif f.raw("networks") == []:
            ctx.issue(f.at("networks"), "a zone needs at least one network")
        networks: list[str] = []
        for net_path, net in f.each("networks", network):
            label = net if "-" in net else f"{net}-*"
            if net in owner:
                # Zone lookup must be a function of the network: one network, one zone.
                first_zone, first_path = owner[net]
                ctx.issue(
                    net_path, f"network '{label}' is already in zone '{first_zone}' ({first_path})"
                )
                continue
            owner[net] = (zone_id or "?", net_path)
            networks.append(net)
        if zone_id is not None:
            out[zone_id] = Zone(zone_id, name, tuple(networks))
    return out


def read_wallets(ctx: Ctx, value: object) -> dict[str, Wallet]:
    out: dict[str, Wallet] = {}
    for path, item in ctx.items("wallets", value):
        f = ctx.mapping(path, item, WALLET_KEYS)
        if f is None:
            continue
        wallet = _wallet(ctx, f)
        if wallet is not None:
            out[wallet.id] = wallet
    return out


def _wallet(ctx: Ctx, f: Fields) -> Wallet | None:
    wallet_id = new_id(ctx, f, "wallet")
    name = f.opt("name", text, wallet_id or "")
    unit = f.req("currency", currency)
    overdraft = f.opt("overdraft_limit", amount, 0)
    suspend_at = f.opt("suspend_at", money, 0)
    resume_at = f.opt("resume_at", money, suspend_at)
    if suspend_at < -overdraft:
        ctx.issue(
            f.at("suspend_at"),
            f"must be at or above -overdraft_limit ({format_money(-overdraft)}): "
            "the wallet cannot be debited that far",
        )
    if resume_at < suspend_at:
        ctx.issue(f.at("resume_at"), f"must be at or above suspend_at ({format_money(suspend_at)})")
    thresholds: list[int] = []
    for level_path, level in f.each("thresholds", money):
        if level in thresholds:
            ctx.issue(level_path, f"threshold {format_money(level)} is listed twice")
        else:
            thresholds.append(level)
    auto = None
    if f.has("auto_top_up"):
        a = ctx.mapping(f.at("auto_top_up"), f.raw("auto_top_up"), ("below", "amount"))
        if a is not None:
            below = a.req("below", money)
            top_up = a.req("amount", positive_amount)
            if below is not None and top_up is not None:
                auto = AutoTopUp(below=below, amount=top_up)
    anchor = f.opt("cycle_anchor_day", int_between(1, 28), 1)
    opening = _opening(ctx, f)
    if wallet_id is None or unit is None:
        return None
    return Wallet(
        id=wallet_id,
        name=name,
        currency=unit,
        overdraft_limit=overdraft,
        suspend_at=suspend_at,
        resume_at=resume_at,
        thresholds=tuple(sorted(thresholds, reverse=True)),
        auto_top_up=auto,
        cycle_anchor_day=anchor,
        opening=opening,
    )


def _opening(ctx: Ctx, f: Fields) -> tuple[OpeningGrant, ...]:
    out: list[OpeningGrant] = []
    for path, item in ctx.items(f.at("opening_balance"), f.raw("opening_balance")):
        g = ctx.mapping(path, item, ("kind", "amount", "priority", "expires_at"))
        if g is None:
            continue
        kind = g.req("kind", choice(GRANT_KINDS, "grant kind"))
        grant = g.req("amount", positive_amount)
        priority = g.maybe("priority", int_capped(0, MAX_PRIORITY))
        expires_at = g.maybe("expires_at", instant)
        if kind is not None and grant is not None:
            if priority is None:
                priority = DEFAULT_PRIORITY[kind]
            out.append(OpeningGrant(kind, grant, priority, expires_at))
    return tuple(out)


def read_pools(ctx: Ctx, value: object) -> dict[str, Pool]:
    out: dict[str, Pool] = {}
    for path, item in ctx.items("pools", value):
        f = ctx.mapping(path, item, POOL_KEYS)
        if f is None:
            continue
        pool = _pool(ctx, f)
        if pool is not None:
            out[pool.id] = pool
    return out


def _pool(ctx: Ctx, f: Fields) -> Pool | None:
    pool_id = new_id(ctx, f, "pool")
    wallet = f.req("wallet", ident)
    if wallet is not None:
        ctx.refer(f.at("wallet"), "wallet", wallet)
    kind = f.req("kind", choice(POOL_KINDS, "pool kind"))
    svc: Service = f.opt("service", choice(SERVICES, "service"), "data")
    if not f.has("zones"):
        ctx.issue(f.at("zones"), "missing required key 'zones'")
    elif f.raw("zones") == []:
        ctx.issue(f.at("zones"), "a pool needs at least one zone")
    zones = [z for p, z in f.each("zones", ident) if ctx.refer(p, "zone", z)]
    if kind is None:
        return None
    for other in ("allowance", "per_sim", "bundles", "tiers", "price"):
        if f.has(other) and other not in KIND_FIELDS[kind]:
            takes = ", ".join(KIND_FIELDS[kind])
            ctx.issue(f.at(other), f"'{other}' does not apply to a {kind} pool (it takes: {takes})")
    positive = size(svc, positive=True)
    allowance = (f.req("allowance", positive) or 0) if kind == "static" else 0
    per_sim = (f.req("per_sim", positive) or 0) if kind == "flexible" else 0
    fee = f.opt("price", amount, 0) if kind in ("static", "flexible") else 0
    bundles = _bundles(ctx, f, svc) if kind == "stacked" else ()
    tiers = _pool_tiers(ctx, f, svc) if kind == "adaptive" else ()
    priced = fee > 0 or any(tier.price > 0 for tier in tiers)
    why = " (a pool with a price needs a revenue split)"
    splits = split_field(f, "splits", required=priced, why=why) or ()
    # A stacked pool's bundles have no cycle to pro-rate, and only static and flexible pools
    # have an allowance of their own.
    prorated = {"static": POOL_PRORATE, "flexible": POOL_PRORATE, "adaptive": ("fee",)}
    counted = prorate(f, POOL_PRORATE, prorated.get(kind, ()))
    if pool_id is None or wallet is None:
        return None
    return Pool(
        id=pool_id,
        wallet=wallet,
        kind=kind,
        service=svc,
        zones=tuple(zones),
        allowance=allowance,
        per_sim=per_sim,
        bundles=bundles,
        tiers=tiers,
        price=fee,
        splits=splits,
        prorate_allowance=counted["allowance"],
        prorate_fee=counted["fee"],
    )


def _bundles(ctx: Ctx, f: Fields, svc: Service) -> tuple[Bundle, ...]:
    if not f.has("bundles") or f.raw("bundles") == []:
        ctx.issue(f.at("bundles"), "a stacked pool needs at least one bundle")
    out: list[Bundle] = []
    seen: dict[str, str] = {}
    for path, item in ctx.items(f.at("bundles"), f.raw("bundles")):
        b = ctx.mapping(path, item, ("id", "size", "valid_from", "valid_to"))
        if b is None:
            continue
        bundle_id = b.req("id", ident)
        if bundle_id is not None and bundle_id in seen:
            ctx.issue(b.at("id"), f"duplicate bundle '{bundle_id}' (first at {seen[bundle_id]})")
            bundle_id = None
        elif bundle_id is not None:
            seen[bundle_id] = b.at("id")
        volume = b.req("size", size(svc, positive=True))
        valid_from = b.opt("valid_from", instant, 0)
        valid_to = b.maybe("valid_to", instant)
        if valid_to is not None and valid_to <= valid_from:
            ctx.issue(b.at("valid_to"), "must be later than valid_from")
        if bundle_id is not None and volume is not None:
            out.append(Bundle(bundle_id, volume, valid_from, valid_to))
    return tuple(out)


def _pool_tiers(ctx: Ctx, f: Fields, svc: Service) -> tuple[PoolTier, ...]:
    if not f.has("tiers") or f.raw("tiers") == []:
        ctx.issue(f.at("tiers"), "an adaptive pool needs at least one tier")
    out: list[PoolTier] = []
    for path, item in ctx.items(f.at("tiers"), f.raw("tiers")):
        t = ctx.mapping(path, item, ("size", "price"))
        if t is None:
            continue
        volume = t.req("size", size(svc, positive=True))
        fee = t.req("price", amount)
        if volume is None or fee is None:
            continue
        # The pool steps up the ladder charging the difference: it must only go up.
        if out and volume <= out[-1].size:
            ctx.issue(t.at("size"), "tier sizes must be strictly ascending")
        if out and fee < out[-1].price:
            ctx.issue(t.at("price"), "tier prices must not go down")
        out.append(PoolTier(volume, fee))
    return tuple(out)


def read_vouchers(ctx: Ctx, value: object) -> dict[str, Voucher]:
    out: dict[str, Voucher] = {}
    for path, item in ctx.items("vouchers", value):
        f = ctx.mapping(path, item, VOUCHER_KEYS)
        if f is None:
            continue
        code = f.req("code", ident)
        if code is not None and not ctx.declare("voucher code", f.at("code"), code):
            code = None
        wallet = f.req("wallet", ident)
        if wallet is not None:
            ctx.refer(f.at("wallet"), "wallet", wallet)
        credit = f.req("amount", positive_amount)
        priority = f.opt("priority", int_capped(0, MAX_PRIORITY), DEFAULT_PRIORITY["voucher"])
        valid_until = f.maybe("valid_until", instant)
        grant_days = f.maybe("grant_days", int_capped(1, 36_500))
        if code is not None and wallet is not None and credit is not None:
            out[code] = Voucher(code, wallet, credit, priority, valid_until, grant_days)
    return out
