"""The ``plans`` section: versions with rates, tiers, rounding, filters, add-ons and splits."""

from __future__ import annotations

from typing import Literal

from engine.domain.catalog import (
    Addon,
    Filter,
    Plan,
    PlanVersion,
    Rate,
    Rounding,
    Share,
    Tier,
    Wallet,
)
from engine.domain.units import DEFAULT_PRICE_UNIT, RATS, SERVICES, Service, unit_size

from .prorate import PLAN_KINDS, prorate
from .reader import Ctx, Fields
from .splits import split_field
from .values import (
    amount,
    choice,
    currency,
    ident,
    instant,
    int_capped,
    per_unit,
    price,
    size,
    text,
    window,
)

PLAN_KEYS = ("id", "name", "versions")
VERSION_KEYS = (
    "version",
    "effective_from",
    "currency",
    "rounding",
    "rates",
    "filters",
    "mrc",
    "addons",
    "restart_fee",
    "restart_fee_per",
    "tier_scope",
    "prorate",
    "splits",
)
ROUNDING_KEYS = ("increment", "first", "next", "minimum")
RATE_KEYS = ("price", "per", "tiers")
TIER_KEYS = ("up_to", "price")
FILTER_KEYS = ("name", "match", "rate", "payer")
MATCH_KEYS = ("services", "zones", "apns", "rats", "time")
ADDON_KEYS = ("id", "name", "mrc", "splits")
SPLIT_KEYS = ("usage", "mrc", "fees")

# What a plan rounds to when it does not say: data per KB, voice per started minute.
DEFAULT_ROUNDING: dict[str, Rounding] = {
    "data": Rounding(first=1024, next=1024),
    "voice": Rounding(first=60, next=60),
    "sms": Rounding(first=1, next=1),
    "event": Rounding(first=1, next=1),
}

service = choice(SERVICES, "service")
rat = choice(RATS, "radio technology")
FEE_BASES: tuple[Literal["sim", "wallet"], ...] = ("sim", "wallet")
fee_basis = choice(FEE_BASES, "restart fee basis")
TIER_SCOPES: tuple[Literal["cycle", "zone"], ...] = ("cycle", "zone")
tier_basis = choice(TIER_SCOPES, "tier scope")


def read_plans(ctx: Ctx, value: object, wallets: dict[str, Wallet]) -> dict[str, Plan]:
    plans: dict[str, Plan] = {}
    for path, item in ctx.items("plans", value):
        plan = _plan(ctx, path, item, wallets)
        if plan is not None:
            plans[plan.id] = plan
    return plans


def _plan(ctx: Ctx, path: str, item: object, wallets: dict[str, Wallet]) -> Plan | None:
    f = ctx.mapping(path, item, PLAN_KEYS)
    if f is None:
        return None
    plan_id = f.req("id", ident)
    if plan_id is not None and not ctx.declare("plan", f.at("id"), plan_id):
        plan_id = None
    name = f.opt("name", text, plan_id or "")
    if not f.has("versions"):
        ctx.issue(f.at("versions"), "missing required key 'versions'")
    elif f.raw("versions") == []:
        ctx.issue(f.at("versions"), "a plan needs at least one version")
    versions: list[PlanVersion] = []
    numbers: dict[int, str] = {}
    previous: tuple[int, str] | None = None
    # A plan with a broken version stays out of the cross-section checks (its id is still
    # declared): what it lacks would otherwise show up again as a second, misleading issue.
    complete = f.has("versions")
    for version_path, version_item in ctx.items(f.at("versions"), f.raw("versions")):
        v = ctx.mapping(version_path, version_item, VERSION_KEYS)
        if v is None:
            complete = False
            continue
        number = v.req("version", int_capped(1, 2**31 - 1))  # a UInt32 column
        if number is not None:
            if number in numbers:
                ctx.issue(
                    v.at("version"), f"duplicate version {number} (first at {numbers[number]})"
                )
            numbers.setdefault(number, v.at("version"))
        effective_from = v.req("effective_from", instant)
        if effective_from is not None:
            # Plan.version_at walks the versions in order: the list must already be sorted.
            if previous is not None and effective_from <= previous[0]:
                ctx.issue(
                    v.at("effective_from"),
                    f"must be later than the version before it ({previous[1]})",
                )
            previous = (effective_from, str(v.raw("effective_from")))
        version = _version(ctx, v, number, effective_from, wallets)
        if version is None:
            complete = False
        else:
            versions.append(version)
    if plan_id is None or not versions or not complete:
        return None
    return Plan(plan_id, name, tuple(versions))


def _version(
    ctx: Ctx,
    v: Fields,
    number: int | None,
    effective_from: int | None,
    wallets: dict[str, Wallet],
) -> PlanVersion | None:
    unit = v.req("currency", currency)
    rounding = _rounding(ctx, v)
    rates = _rates(ctx, v)
    filters = _filters(ctx, v, unit, wallets)
    mrc = v.opt("mrc", amount, 0)
    addons = _addons(ctx, v)
    restart_fee = v.opt("restart_fee", amount, 0)
    restart_fee_per = v.opt("restart_fee_per", fee_basis, FEE_BASES[0])
    tier_scope = v.opt("tier_scope", tier_basis, TIER_SCOPES[0])
    counted = prorate(v, PLAN_KINDS)
    usage, mrc_splits, fees = _splits(ctx, v)
    if number is None or effective_from is None or unit is None or rates is None:
        return None
    return PlanVersion(
        version=number,
        effective_from=effective_from,
        currency=unit,
        rates=rates,
        rounding=rounding,
        filters=filters,
        mrc=mrc,
        addons=addons,
        restart_fee=restart_fee,
        restart_fee_per=restart_fee_per,
        tier_scope=tier_scope,
        prorate_mrc=counted["mrc"],
        prorate_addons=counted["addons"],
        usage_splits=usage,
        mrc_splits=mrc_splits,
        fee_splits=fees,
    )


def _rounding(ctx: Ctx, v: Fields) -> dict[str, Rounding]:
    """Every service gets a rounding: the one written, or the default for the service."""
    out = dict(DEFAULT_ROUNDING)
    if not v.has("rounding"):
        return out
    for name, path, value in ctx.entries(v.at("rounding"), v.raw("rounding")):
        svc = ctx.convert(path, name, service)
        r = ctx.mapping(path, value, ROUNDING_KEYS)
        if svc is None or r is None:
            continue
        default = out[svc]
        step = size(svc, positive=True)
        if r.has("increment") and (r.has("first") or r.has("next")):
            ctx.issue(r.at("increment"), "give either 'increment' or 'first' and 'next', not both")
        increment = r.maybe("increment", step)
        first = r.opt("first", step, increment or default.first)
        following = r.opt("next", step, increment or default.next)
        minimum = r.opt("minimum", size(svc), default.minimum)
        out[svc] = Rounding(first=first, next=following, minimum=minimum)
    return out


def _rates(ctx: Ctx, v: Fields) -> dict[str, dict[str, Rate]] | None:
    if not v.has("rates"):
        ctx.issue(v.at("rates"), "missing required key 'rates'")
        return None
    out: dict[str, dict[str, Rate]] = {}
    for name, service_path, zones in ctx.entries(v.at("rates"), v.raw("rates")):
        svc = ctx.convert(service_path, name, service)
        if svc is None:
            continue
        by_zone: dict[str, Rate] = {}
        for zone, zone_path, written in ctx.entries(service_path, zones):
            ctx.refer(zone_path, "zone", zone)
            rate = read_rate(ctx, zone_path, written, svc)
            if rate is not None:
                by_zone[zone] = rate
        out[svc] = by_zone
    return out


def read_rate(ctx: Ctx, path: str, value: object, svc: Service) -> Rate | None:
    """``{price, per}`` (flat) or ``{per, tiers}`` (graduated over the cycle's volume)."""
    r = ctx.mapping(path, value, RATE_KEYS)
    if r is None:
        return None
    per = r.opt("per", per_unit(svc), unit_size(svc, DEFAULT_PRICE_UNIT[svc]))
    if r.has("price") and r.has("tiers"):
        ctx.issue(path, "give either 'price' or 'tiers', not both")
        return None
    if r.has("tiers"):
        tiers = _tiers(ctx, r.at("tiers"), r.raw("tiers"), svc)
    elif r.has("price"):
        flat = r.req("price", price)
        tiers = None if flat is None else (Tier(None, flat),)
    else:
        ctx.issue(r.at("price"), "missing required key 'price' (or 'tiers')")
        return None
    return None if tiers is None else Rate(tiers=tiers, per=per)


def _tiers(ctx: Ctx, path: str, value: object, svc: Service) -> tuple[Tier, ...] | None:
    items = ctx.items(path, value)
    if value == []:
        ctx.issue(path, "expected at least one tier")
    tiers: list[Tier] = []
    complete = bool(items)
    previous: tuple[int, object] | None = None
    for index, (tier_path, item) in enumerate(items):
        t = ctx.mapping(tier_path, item, TIER_KEYS)
        if t is None:
            complete = False
            continue
        last = index == len(items) - 1
        up_to = t.maybe("up_to", size(svc, positive=True))
        cost = t.req("price", price)
        if last and t.has("up_to"):
            ctx.issue(t.at("up_to"), "the last tier has no 'up_to': it prices all the rest")
        elif not last and not t.has("up_to"):
            ctx.issue(t.at("up_to"), "only the last tier may leave out 'up_to'")
        if up_to is not None:
            if previous is not None and up_to <= previous[0]:
                ctx.issue(
                    t.at("up_to"),
                    f"must be above the tier before it ({previous[1]}), got {t.raw('up_to')}",
                )
            previous = (up_to, t.raw("up_to"))
        if cost is None or (up_to is None and not last):
            complete = False
            continue
        tiers.append(Tier(up_to=None if last else up_to, price=cost))
    return tuple(tiers) if complete else None


def _filters(
    ctx: Ctx, v: Fields, unit: str | None, wallets: dict[str, Wallet]
) -> tuple[Filter, ...]:
    out: list[Filter] = []
    for path, item in ctx.items(v.at("filters"), v.raw("filters")):
        g = ctx.mapping(path, item, FILTER_KEYS)
        if g is None:
            continue
        name = g.req("name", text)
        m = ctx.mapping(g.at("match"), g.raw("match"), MATCH_KEYS) if g.has("match") else None
        services: list[Service] = []
        all_services = True
        zones: list[str] = []
        apns: list[str] = []
        rats: list[str] = []
        time = None
        if m is not None:
            services = [svc for _, svc in m.each("services", service)]
            written = m.raw("services")
            all_services = not isinstance(written, list) or len(written) == len(services)
            zones = [zone for p, zone in m.each("zones", ident) if ctx.refer(p, "zone", zone)]
            apns = [apn for _, apn in m.each("apns", text)]
            rats = [r for _, r in m.each("rats", rat)]
            time = m.maybe("time", window)
        rate = None
        if g.has("rate"):
            if len(services) == 1 and all_services:
                rate = read_rate(ctx, g.at("rate"), g.raw("rate"), services[0])
            elif all_services:
                # The rate's 'per' unit only means something for one service.
                ctx.issue(g.at("rate"), "a filter with a rate must match exactly one service")
        payer = g.maybe("payer", ident)
        if payer is not None and ctx.refer(g.at("payer"), "wallet", payer):
            wallet = wallets.get(payer)
            if wallet is not None and unit is not None and wallet.currency != unit:
                ctx.issue(
                    g.at("payer"),
                    f"wallet '{payer}' is in {wallet.currency}, this version in {unit}",
                )
        if not g.has("rate") and not g.has("payer"):
            ctx.issue(path, "a filter needs a 'rate', a 'payer', or both")
        if name is not None:
            out.append(
                Filter(
                    name=name,
                    services=tuple(services),
                    zones=tuple(zones),
                    apns=tuple(apns),
                    rats=tuple(rats),
                    window=time,
                    rate=rate,
                    payer=payer,
                )
            )
    return tuple(out)


def _addons(ctx: Ctx, v: Fields) -> dict[str, Addon]:
    out: dict[str, Addon] = {}
    seen: dict[str, str] = {}
    for path, item in ctx.items(v.at("addons"), v.raw("addons")):
        a = ctx.mapping(path, item, ADDON_KEYS)
        if a is None:
            continue
        addon_id = a.req("id", ident)
        if addon_id is not None:
            if addon_id in seen:
                ctx.issue(a.at("id"), f"duplicate addon '{addon_id}' (first at {seen[addon_id]})")
                addon_id = None
            else:
                seen[addon_id] = a.at("id")
        name = a.opt("name", text, addon_id or "")
        mrc = a.req("mrc", amount)
        splits = split_field(a, "splits", required=True)
        if addon_id is not None and mrc is not None and splits is not None:
            out[addon_id] = Addon(id=addon_id, name=name, mrc=mrc, splits=splits)
    return out


def _splits(ctx: Ctx, v: Fields) -> tuple[tuple[Share, ...], tuple[Share, ...], tuple[Share, ...]]:
    """Usage and MRC splits are required; fees default to the MRC split."""
    if not v.has("splits"):
        ctx.issue(v.at("splits"), "missing required key 'splits'")
        return (), (), ()
    s = ctx.mapping(v.at("splits"), v.raw("splits"), SPLIT_KEYS)
    if s is None:
        return (), (), ()
    usage = split_field(s, "usage", required=True) or ()
    mrc = split_field(s, "mrc", required=True) or ()
    fees = split_field(s, "fees", required=False) or mrc
    return usage, mrc, fees
