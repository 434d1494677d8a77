"""Pools: static, flexible, stacked and adaptive allowances, and what they leave to rate."""

from __future__ import annotations

import msgspec

from engine.domain.catalog import Bundle
from engine.domain.cycles import cycle_of
from engine.domain.events import Charged, PoolDraw, PoolStepped, UsageRated
from engine.domain.pools import NO_DRAW, Step, covers, draw
from engine.domain.state import initial_state

from .builders import (
    MB,
    SIM1,
    SIM2,
    SIM3,
    T0,
    Wallets,
    adaptive_pool,
    attach,
    catalog,
    cdr,
    detach,
    flexible_pool,
    of,
    one,
    plan,
    rate,
    stacked_pool,
    static_pool,
    sub,
    tick,
    ts,
    types,
)

# 1 EUR per MB: the direct-rated part of a record costs its MB count in EUR.
EUR_PER_MB = plan(
    rates={"data": {"EU": rate("1", MB), "US": rate("1", MB)}, "sms": {"EU": rate("0.05")}}
)
FEB = ts("2026-02-03T00:00:00Z")


def pooled(
    run: Wallets, cdr_id: str, volume: int, at: int = T0, iccid: str = SIM1, network: str = "262-01"
) -> UsageRated:
    return one(run.when(cdr(cdr_id, volume, at=at, iccid=iccid, network=network)), UsageRated)


def test_static_pool_covers_its_allowance_then_usage_is_rated() -> None:
    cat = catalog(plans=[EUR_PER_MB], pools=[static_pool(allowance=10 * MB)], subs=[sub(pool="p1")])
    run = Wallets(cat)
    first = pooled(run, "c1", 6 * MB)
    assert (first.pooled_volume, first.charged_volume, first.amount) == (6 * MB, 0, 0)
    assert [(d.pool_id, d.bucket, d.volume) for d in first.draws] == [("p1", "2026-01-01", 6 * MB)]
    # 4 MB left: 6 MB more is 4 pooled + 2 rated
    second = pooled(run, "c2", 6 * MB, at=T0 + 1)
    assert (second.pooled_volume, second.charged_volume, second.amount) == (
        4 * MB,
        2 * MB,
        2_000_000,
    )
    # empty pool: fully rated, no draw
    third = pooled(run, "c3", MB, at=T0 + 2)
    assert (third.draws, third.amount) == ((), 1_000_000)
    # a new cycle refills it
    assert pooled(run, "c4", MB, at=FEB).draws[0].bucket == "2026-02-01"


def test_usage_outside_the_pool_zones_or_service_is_rated_directly() -> None:
    cat = catalog(plans=[EUR_PER_MB], pools=[static_pool(allowance=10 * MB)], subs=[sub(pool="p1")])
    run = Wallets(cat)
    roaming = pooled(run, "c1", MB, network="310-260")
    assert (roaming.draws, roaming.amount) == ((), 1_000_000)
    sms = one(run.when(cdr("s1", 1, service="sms")), UsageRated)
    assert (sms.draws, sms.amount) == ((), 50_000)


def test_flexible_pool_grows_with_active_sims() -> None:
    subs = [sub(SIM1, pool="p1"), sub(SIM2, pool="p1"), sub(SIM3)]  # SIM3 is not in the pool
    cat = catalog(plans=[EUR_PER_MB], pools=[flexible_pool(per_sim=5 * MB)], subs=subs)
    run = Wallets(cat)
    # 2 SIMs in the pool -> 10 MB for the cycle, shared
    assert pooled(run, "c1", 8 * MB).pooled_volume == 8 * MB
    second = pooled(run, "c2", 4 * MB, at=T0 + 1, iccid=SIM2)
    assert (second.pooled_volume, second.amount) == (2 * MB, 2_000_000)
    # SIM3 draws nothing
    assert pooled(run, "c3", MB, iccid=SIM3).draws == ()


def test_flexible_pool_counts_a_sim_attached_in_the_cycle() -> None:
    cat = catalog(
        plans=[EUR_PER_MB], pools=[flexible_pool(per_sim=5 * MB)], subs=[sub(SIM1, pool="p1")]
    )
    run = Wallets(cat)
    assert pooled(run, "c1", 6 * MB).pooled_volume == 5 * MB
    run.given(attach("a1", SIM2, at=T0 + 10, pool="p1"))
    # 2 SIMs now: 5 MB more of allowance this cycle
    assert pooled(run, "c2", 6 * MB, at=T0 + 20, iccid=SIM2).pooled_volume == 5 * MB


def test_flexible_pool_keeps_counting_a_sim_detached_during_the_cycle() -> None:
    subs = [sub(SIM1, pool="p1"), sub(SIM2, pool="p1")]
    cat = catalog(plans=[EUR_PER_MB], pools=[flexible_pool(per_sim=5 * MB)], subs=subs)
    run = Wallets(cat)
    run.given(detach("d1", SIM2, at=T0 + 10))
    # SIM2 was active in January, so January keeps 10 MB
    assert pooled(run, "c1", 12 * MB, at=T0 + 20).pooled_volume == 10 * MB
    # in February only SIM1 is active: 5 MB
    assert pooled(run, "c2", 12 * MB, at=FEB).pooled_volume == 5 * MB


def test_stacked_bundles_drawn_in_order_within_validity() -> None:
    bundles = [
        Bundle("b-old", 2 * MB, valid_from=0, valid_to=T0),  # already over
        Bundle("b1", 3 * MB, valid_from=0),
        Bundle("b2", 4 * MB, valid_from=T0, valid_to=T0 + 86400),
        Bundle("b-later", 5 * MB, valid_from=T0 + 86400),
    ]
    cat = catalog(plans=[EUR_PER_MB], pools=[stacked_pool(bundles=bundles)], subs=[sub(pool="p1")])
    run = Wallets(cat)
    first = pooled(run, "c1", 5 * MB)
    assert [(d.bucket, d.volume) for d in first.draws] == [("b1", 3 * MB), ("b2", 2 * MB)]
    # 2 MB left in b2, b-later not valid yet: 3 MB -> 2 pooled, 1 rated
    second = pooled(run, "c2", 3 * MB, at=T0 + 100)
    assert [(d.bucket, d.volume) for d in second.draws] == [("b2", 2 * MB)]
    assert second.amount == 1_000_000
    # b2 has expired (valid_to exclusive), b-later is valid; bundles span cycles
    third = pooled(run, "c3", 6 * MB, at=FEB)
    assert [(d.bucket, d.volume) for d in third.draws] == [("b-later", 5 * MB)]
    assert third.amount == 1_000_000


def test_adaptive_pool_steps_to_the_smallest_tier_that_fits() -> None:
    pool = adaptive_pool(tiers=[(10 * MB, "5"), (20 * MB, "8"), (50 * MB, "15"), (100 * MB, "25")])
    cat = catalog(plans=[EUR_PER_MB], pools=[pool], subs=[sub(pool="p1")])
    run = Wallets(cat)
    assert pooled(run, "c1", 8 * MB).pooled_volume == 8 * MB
    # 8 + 30 = 38 MB: 20 MB is too small, 50 MB fits -> tier 2, charged 15 - 5 = 10 EUR
    events = run.when(cdr("c2", 30 * MB, at=T0 + 1))
    assert types(events) == ["PoolStepped", "Charged", "UsageRated"]
    stepped, charged = one(events, PoolStepped), one(events, Charged)
    assert (stepped.tier, stepped.size, stepped.cycle) == (2, 50 * MB, "2026-01-01")
    assert (charged.kind, charged.ref, charged.amount, charged.cycle) == (
        "pool_step",
        "p1",
        10_000_000,
        "2026-01-01",
    )
    rated = one(events, UsageRated)
    assert (rated.pooled_volume, rated.amount) == (30 * MB, 0)
    # a record that still fits does not step
    assert not of(run.when(cdr("c3", 12 * MB, at=T0 + 2)), PoolStepped)


def test_adaptive_pool_past_its_largest_tier_rates_the_rest() -> None:
    pool = adaptive_pool(tiers=[(10 * MB, "5"), (20 * MB, "8")])
    cat = catalog(plans=[EUR_PER_MB], pools=[pool], subs=[sub(pool="p1")])
    run = Wallets(cat)
    events = run.when(cdr("c1", 25 * MB))
    assert one(events, PoolStepped).tier == 1
    assert one(events, Charged).amount == 3_000_000
    rated = one(events, UsageRated)
    assert (rated.pooled_volume, rated.charged_volume, rated.amount) == (20 * MB, 5 * MB, 5_000_000)
    # at the top: nothing more to step to, all rated
    events = run.when(cdr("c2", MB, at=T0 + 1))
    assert not of(events, PoolStepped)
    assert one(events, UsageRated).amount == 1_000_000


def test_adaptive_pool_starts_again_at_its_first_tier_each_cycle() -> None:
    pool = adaptive_pool(tiers=[(10 * MB, "5"), (20 * MB, "8")])
    cat = catalog(plans=[EUR_PER_MB], pools=[pool], subs=[sub(pool="p1")])
    run = Wallets(cat)
    run.given(cdr("c1", 15 * MB))
    assert run.state.pool_tier.get(("p1", "2026-01-01")) == 1
    assert not of(run.when(cdr("c2", 10 * MB, at=FEB)), PoolStepped)
    assert one(run.when(cdr("c3", MB, at=FEB + 1)), PoolStepped).cycle == "2026-02-01"


def test_pool_fee_per_cycle_on_tick() -> None:
    pools = [
        static_pool("p1", price="20"),
        adaptive_pool("p2", tiers=[(10 * MB, "5"), (20 * MB, "8")]),
    ]
    run = Wallets(catalog(plans=[EUR_PER_MB], pools=pools))
    fees = of(run.when(tick("t1", T0)), Charged)
    assert [(c.kind, c.ref, c.amount) for c in fees] == [
        ("pool_fee", "pool:p1", 20_000_000),
        ("pool_fee", "pool:p2", 5_000_000),  # an adaptive pool's fee is its first tier's
    ]


# -- draw on its own: what a pool covers of one record -----------------------------------


def test_a_pool_covers_its_service_in_its_zones_only() -> None:
    pool = static_pool()
    assert covers(pool, "data", "EU")
    assert not covers(pool, "sms", "EU") and not covers(pool, "data", "US")


def test_a_draw_never_takes_more_than_is_left() -> None:
    pool, cycle = static_pool(allowance=10 * MB), cycle_of(T0, 1)
    state = initial_state("w1")
    assert draw(state, pool, cycle, T0, 4 * MB, granted=10 * MB).volume == 4 * MB
    used = msgspec.structs.replace(state, pool_used={(pool.id, cycle.id): 8 * MB})
    taken = draw(used, pool, cycle, T0, 4 * MB, granted=10 * MB)
    assert taken.draws == (PoolDraw(pool.id, cycle.id, 2 * MB),)
    assert draw(used, pool, cycle, T0, 0, granted=10 * MB) is NO_DRAW


def test_an_adaptive_pool_steps_to_the_first_tier_that_fits() -> None:
    pool = adaptive_pool(tiers=[(MB, "1"), (5 * MB, "3"), (20 * MB, "8")])
    taken = draw(initial_state("w1"), pool, cycle_of(T0, 1), T0, 4 * MB, granted=0)
    assert taken.step == Step(1, 5 * MB, 2_000_000)
    assert taken.volume == 4 * MB
