"""Hypothesis strategies: random small catalogs and random input sequences for one wallet."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from engine.domain import Catalog, Cdr, WriteOffDebt
from engine.domain.catalog import Bundle, Filter, Rounding, Share, TimeWindow, Wallet, build_catalog
from engine.domain.commands import OpenWallet
from engine.domain.money import format_money
from engine.domain.provisioning import open_terms, terms_wallet

from .builders import (
    DAY,
    KB,
    MB,
    NEVER_SUSPEND,
    SIM1,
    SIM2,
    SIM3,
    T0,
    Input,
    adaptive_pool,
    addon,
    adopt_catalog,
    attach,
    catalog,
    cdr,
    change_plan,
    close_wallet,
    detach,
    dt,
    flexible_pool,
    opening,
    plan,
    rate,
    redeem,
    resume_wallet,
    stacked_pool,
    static_pool,
    sub,
    suspend_wallet,
    tick,
    tiered,
    top_up,
    voucher,
    wallet,
)

SIMS = (SIM1, SIM2, SIM3)
NETWORKS = ("262-01", "262-07", "208-01", "310-260", "999-01")
"""EU, PREMIUM (no rate in the random plans), EU, US, nowhere."""

money = st.integers(0, 3000).map(lambda cents: f"{cents // 100}.{cents % 100:02d}")
positive = st.integers(1, 3000).map(lambda cents: f"{cents // 100}.{cents % 100:02d}")
"""Catalog amounts (opening grants, vouchers) are positive, as the catalog loader requires."""
prices = st.sampled_from(["0", "0.0000005", "0.0195", "0.01", "0.333333", "1", "2.5"])
weights = st.lists(st.integers(0, 7), min_size=1, max_size=3).filter(lambda w: sum(w) > 0)


def shares(ws: list[int]) -> tuple[Share, ...]:
    names = ("op", "platform", "reseller")
    return tuple(Share(names[i], w) for i, w in enumerate(ws))


@st.composite
def data_rates(draw: st.DrawFn) -> Any:
    if draw(st.booleans()):
        return rate(draw(prices), draw(st.sampled_from([1, KB, MB])))
    bound = draw(st.integers(1, 8)) * MB
    return tiered(MB, (bound, draw(prices)), (bound * 2, draw(prices)), (None, draw(prices)))


@st.composite
def pools(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["none", "static", "flexible", "stacked", "adaptive"]))
    fee = draw(st.sampled_from(["0", "1.5", "4"]))
    prorated = {
        "prorate_allowance": draw(st.sampled_from(["none", "daily"])),
        "prorate_fee": draw(st.sampled_from(["none", "daily"])),
    }
    if kind == "static":
        return static_pool(allowance=draw(st.integers(0, 20)) * MB, price=fee, **prorated)
    if kind == "flexible":
        return flexible_pool(per_sim=draw(st.integers(0, 8)) * MB, price=fee, **prorated)
    if kind == "stacked":
        n = draw(st.integers(1, 3))
        bundles = []
        for i in range(n):
            start = T0 + draw(st.integers(-5, 40)) * DAY
            length = draw(st.none() | st.integers(1, 40))
            bundles.append(
                Bundle(
                    f"b{i}",
                    draw(st.integers(0, 10)) * MB,
                    start,
                    None if length is None else start + length * DAY,
                )
            )
        return stacked_pool(bundles=bundles)
    if kind == "adaptive":
        sizes = sorted(set(draw(st.lists(st.integers(1, 30), min_size=1, max_size=4))))
        cost = 0
        tiers = []
        for size in sizes:
            cost += draw(st.integers(0, 500))
            tiers.append((size * MB, f"{cost // 100}.{cost % 100:02d}"))
        return adaptive_pool(tiers=tiers)
    return None


@st.composite
def catalogs(draw: st.DrawFn, payer: bool = True) -> Catalog:
    filters = []
    if draw(st.booleans()):
        filters.append(
            Filter(
                "night",
                window=TimeWindow(draw(st.integers(0, 1439)), draw(st.integers(0, 1439))),
                rate=rate(draw(prices), MB),
            )
        )
    if payer and draw(st.booleans()):
        filters.append(Filter("corp", apns=("corp",), payer="w2"))
    rounding = {
        "data": draw(st.sampled_from([Rounding(), Rounding(KB, KB), Rounding(KB, KB, 10 * KB)])),
        "voice": draw(st.sampled_from([Rounding(60, 60), Rounding(60, 1)])),
    }
    rates = {
        "data": {"EU": draw(data_rates()), "US": draw(data_rates())},
        "sms": {"EU": rate(draw(prices))},
        "voice": {"EU": rate(draw(prices), 60)},
    }
    basic = plan(
        rates=rates,
        rounding=rounding,
        filters=filters,
        mrc=draw(st.sampled_from(["0", "1", "2.345678"])),
        addons=[addon("gps", draw(st.sampled_from(["0", "0.5"])))],
        restart_fee=draw(st.sampled_from(["0", "0.25", "4"])),
        restart_fee_per=draw(st.sampled_from(["sim", "wallet"])),
        tier_scope=draw(st.sampled_from(["cycle", "zone"])),
        prorate_mrc=draw(st.sampled_from(["none", "daily"])),
        prorate_addons=draw(st.sampled_from(["none", "daily"])),
        usage_splits=shares(draw(weights)),
        mrc_splits=shares(draw(weights)),
    )
    other = plan("other", rates={"data": {"EU": rate(draw(prices), MB)}}, usage_splits=shares([1]))
    grants = draw(
        st.lists(
            st.builds(
                lambda amount, priority, days: opening(
                    amount, priority=priority, expires_at=None if days is None else T0 + days * DAY
                ),
                positive,
                st.sampled_from([10, 20, 40]),
                st.none() | st.integers(0, 60),
            ),
            max_size=3,
        )
    )
    suspend = draw(st.sampled_from([NEVER_SUSPEND, 0, -1_000_000]))
    the_pool = draw(pools())
    sims = [
        sub(
            iccid,
            pool=the_pool.id if the_pool is not None and draw(st.booleans()) else None,
            addons=("gps",) if draw(st.booleans()) else (),
            active_from=draw(st.sampled_from([0, 0, T0 + 20 * DAY])),
        )
        for iccid in SIMS[: draw(st.integers(1, 2))]
    ]
    w1 = wallet(
        opening=grants,
        overdraft=draw(st.sampled_from(["0", "1", "5"])),
        suspend_at=suspend,
        resume_at=suspend + draw(st.sampled_from([0, 1, 3_000_000])),
        thresholds=draw(st.sampled_from([(), ("5",), ("10", "3", "1")])),
        auto_top_up=draw(st.none() | st.just(("2", "20"))),
        anchor=draw(st.integers(1, 28)),
    )
    vouchers = [
        voucher(
            f"V{i}",
            draw(positive),
            grant_days=draw(st.none() | st.integers(1, 20)),
            valid_until=draw(st.none() | st.just(T0 + 30 * DAY)),
        )
        for i in range(draw(st.integers(0, 2)))
    ]
    return catalog(
        plans=[basic, other],
        wallets=[w1, wallet("w2")],
        subs=sims,
        pools=[] if the_pool is None else [the_pool],
        vouchers=vouchers,
        dedup_window=draw(st.integers(1, 30)) * DAY,
    )


@st.composite
def inputs(
    draw: st.DrawFn, max_size: int = 25, commands: bool = True, closing: bool = True
) -> list[Input]:
    """Inputs in roughly increasing time, some out of order, some re-sent; ``closing``: a
    ``CloseWallet`` among them now and then."""
    n = draw(st.integers(1, max_size))
    clock = T0 - DAY
    out: list[Input] = []
    sent: list[Cdr] = []
    kinds = ["cdr"] * 6
    if commands:
        kinds += ["top_up", "tick", "redeem", "sim", "write_off", "provision", "provision"]
    for i in range(n):
        clock += draw(st.sampled_from([0, 60, 3600, DAY, 5 * DAY]))
        at = clock - draw(st.sampled_from([0, 0, 0, 3600, 2 * DAY, 40 * DAY]))
        kind = draw(st.sampled_from(kinds))
        if kind == "cdr":
            if sent and draw(st.integers(0, 4)) == 0:
                # a re-sent record is the same record: same id, same content
                out.append(draw(st.sampled_from(sent)))
                continue
            service = draw(st.sampled_from(["data", "data", "sms", "voice"]))
            volume = draw(st.integers(0, 12 * MB) if service == "data" else st.integers(-1, 400))
            record = cdr(
                f"c{i}",
                volume,
                at=at,
                iccid=draw(st.sampled_from(SIMS)),
                service=service,
                network=draw(st.sampled_from(NETWORKS)),
                offset=draw(st.sampled_from([0, 120, -300])),
                apn=draw(st.sampled_from([None, "corp"])),
            )
            sent.append(record)
            out.append(record)
        elif kind == "top_up":
            out.append(
                top_up(
                    f"t{draw(st.integers(0, n))}",
                    draw(money | st.sampled_from(["-1", "x", "0.0000001"])),
                    at=at,
                    currency=draw(st.sampled_from(["EUR", "EUR", "EUR", "USD"])),
                    kind=draw(st.sampled_from(["top_up", "promotion", "refund"])),
                    expires_at=draw(st.none() | st.just(at + draw(st.integers(1, 20)) * DAY)),
                )
            )
        elif kind == "tick":
            out.append(tick(f"k{i}", at))
        elif kind == "redeem":
            out.append(redeem(f"r{i}", draw(st.sampled_from(["V0", "V1", "NOPE"])), at=at))
        elif kind == "write_off":
            amount = draw(st.sampled_from([None, "0.5", "1000000", "-1"]))
            out.append(
                WriteOffDebt(
                    command_id=f"w{i}", wallet_id="w1", at=dt(at), reason="bad debt", amount=amount
                )
            )
        elif kind == "provision":
            out.extend(draw(provisioning(f"v{i}", at, closing)))
        else:
            iccid = draw(st.sampled_from(SIMS))
            move = draw(st.sampled_from(["attach", "detach", "change_plan"]))
            if move == "attach":
                pool_id = draw(st.sampled_from([None, "p1"]))
                out.append(attach(f"s{i}", iccid, at=at, pool=pool_id))
            elif move == "detach":
                out.append(detach(f"s{i}", iccid, at=at))
            else:
                out.append(change_plan(f"s{i}", iccid, "other", at=at))
    return out


@st.composite
def provisioning(draw: st.DrawFn, command_id: str, at: int, closing: bool = True) -> list[Input]:
    """A suspension or resumption by hand, a catalog revision, now and then a closing, half
    of the time after detaching every SIM (else most often refused: a SIM is in use)."""
    what = draw(
        st.sampled_from(
            ["hold", "hold", "release", "release", "adopt", "close"][: 6 if closing else 5]
        )
    )
    if what == "hold":
        return [suspend_wallet(command_id, at=at)]
    if what == "release":
        return [resume_wallet(command_id, at=at)]
    if what == "adopt":
        return [adopt_catalog(command_id, draw(st.integers(1, 3)), at=at)]
    detached: list[Input] = []
    if draw(st.booleans()):
        detached = [detach(f"{command_id}-{sim}", sim, at=at) for sim in SIMS]
    return [*detached, close_wallet(command_id, at=at)]


def by_command(cat: Catalog, items: list[Input], position: int) -> tuple[Catalog, list[Input]]:
    """The same scenario with ``w1`` opened by an ``OpenWallet`` (inserted at ``position``)
    instead of listed in the catalog: its terms, without opening grants or auto top-up
    (which a command does not give). The overdraft limit is raised to what the suspension
    level needs, as the terms require; the decider reads no overdraft limit."""
    w = cat.wallets["w1"]
    command = OpenWallet(
        command_id="open-w1",
        wallet_id="w1",
        at=dt(T0 - 2 * DAY),
        currency=w.currency,
        name=w.name,
        overdraft_limit=format_money(max(w.overdraft_limit, -w.suspend_at)),
        suspend_at=format_money(w.suspend_at),
        resume_at=format_money(w.resume_at),
        thresholds=tuple(format_money(t) for t in w.thresholds),
        cycle_anchor_day=w.cycle_anchor_day,
    )
    unlisted = build_catalog(
        cat.providers,
        cat.zones,
        cat.plans,
        cat.pools,
        {k: v for k, v in cat.wallets.items() if k != "w1"},
        cat.subscriptions,
        cat.vouchers,
        cat.dedup_window,
        cat.limits,
    )
    return unlisted, [*items[:position], command, *items[position:]]


def wallet_in(cat: Catalog, items: list[Input]) -> Wallet:
    """The wallet ``w1`` is decided with: the catalog's, or its ``OpenWallet``'s terms."""
    listed = cat.wallets.get("w1")
    if listed is not None:
        return listed
    command = next(i for i in items if isinstance(i, OpenWallet))
    return terms_wallet("w1", open_terms(command))


@st.composite
def scenarios(
    draw: st.DrawFn, payer: bool = True, max_size: int = 25
) -> tuple[Catalog, list[Input]]:
    """A random catalog and inputs; in half of them ``w1`` is opened by command."""
    cat = draw(catalogs(payer=payer))
    items = draw(inputs(max_size=max_size))
    if draw(st.booleans()):
        return by_command(cat, items, draw(st.integers(0, len(items))))
    return cat, items
