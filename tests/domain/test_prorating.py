"""Daily pro-rating of MRCs, add-on MRCs, pool fees and allowances, worked by hand.

January has 31 days, so an MRC of 3.10 is 0.10 a day. A daily charge is taken once its
cycle has ended (the first tick after it), for the days the SIM was there: from the day it
arrived (counted) to the day it left or changed plan (not counted)."""

from __future__ import annotations

from engine.domain.cycles import cycle_of
from engine.domain.draft import Draft
from engine.domain.events import Charged
from engine.domain.prorating import pool_amount, segments, sim_amount
from engine.domain.state import initial_state

from .builders import (
    SIM1,
    SIM2,
    Wallets,
    addon,
    attach,
    catalog,
    change_plan,
    detach,
    of,
    plan,
    static_pool,
    sub,
    tick,
    ts,
)

JAN1 = ts("2026-01-01T00:00:00Z")
FEB1 = ts("2026-02-01T00:00:00Z")
MAR1 = ts("2026-03-01T00:00:00Z")
DAILY = plan("daily", mrc="3.10", prorate_mrc="daily")


def _charges(run: Wallets, command_id: str, at: int) -> list[tuple[str, str, int, str | None]]:
    return [(c.kind, c.ref, c.amount, c.cycle) for c in of(run.when(tick(command_id, at)), Charged)]


def test_a_sim_attached_mid_cycle_pays_its_days_at_the_close() -> None:
    cat = catalog(plans=[DAILY], subs=[sub(SIM1, plan="daily", active_from=JAN1)])
    run = Wallets(cat)
    # In arrears: nothing for January yet (nor for December: SIM1 was not there).
    assert _charges(run, "t0", JAN1 + 3600) == []
    run.given(attach("a1", SIM2, "daily", at=ts("2026-01-10T12:00:00Z")))
    # SIM1: all 31 days, 3.10; SIM2: the 10th to the 31st, 22 days, 2.20
    assert _charges(run, "t1", FEB1) == [
        ("mrc", SIM1, 3_100_000, "2026-01-01"),
        ("mrc", SIM2, 2_200_000, "2026-01-01"),
    ]
    assert _charges(run, "t2", FEB1 + 3600) == []  # once per cycle
    # February: all its 28 days, the whole MRC
    assert [c[2] for c in _charges(run, "t3", MAR1)] == [3_100_000, 3_100_000]


def test_a_sim_detached_mid_cycle_pays_until_the_day_it_left() -> None:
    run = Wallets(catalog(plans=[DAILY], subs=[sub(SIM1, plan="daily")]))
    run.given(detach("d1", SIM1, at=ts("2026-01-21T08:00:00Z")))
    # the 1st to the 20th: 20 days, 2.00
    assert _charges(run, "t1", FEB1) == [("mrc", SIM1, 2_000_000, "2026-01-01")]
    assert _charges(run, "t2", MAR1) == []


def test_a_plan_change_splits_the_days_between_the_plans_rounded_once() -> None:
    other = plan("other", mrc="6.20", prorate_mrc="daily")
    run = Wallets(catalog(plans=[DAILY, other], subs=[sub(SIM1, plan="daily")]))
    run.given(change_plan("p1", SIM1, "other", at=ts("2026-01-11T15:00:00Z")))
    # 10 days at 3.10 (1.00) and 21 days at 6.20 (4.20): 5.20
    assert _charges(run, "t1", FEB1) == [("mrc", SIM1, 5_200_000, "2026-01-01")]


def test_a_daily_amount_rounds_half_up_once_and_its_lines_sum_to_it() -> None:
    one_eur = plan("daily", mrc="1.00", prorate_mrc="daily")
    cat = catalog(
        plans=[one_eur], subs=[sub(SIM1, plan="daily", active_from=ts("2026-01-22T00:00:00Z"))]
    )
    run = Wallets(cat)
    events = run.when(tick("t1", FEB1))
    (mrc,) = of(events, Charged)
    # 10 days of 31: 1.00 × 10 / 31 = 0.3225806..., half-up to 322,581 micro-units
    assert mrc.amount == 322_581
    assert sum(line.amount for line in mrc.splits) == mrc.amount
    assert [line.amount for line in mrc.splits] == [225_807, 64_516, 32_258]


def test_add_on_mrcs_pro_rate_by_their_own_option() -> None:
    version_plan = plan(
        "daily",
        mrc="3.10",
        prorate_addons="daily",
        addons=[addon("static-ip", "0.62")],
    )
    subs = [sub(SIM1, plan="daily", addons=("static-ip",), active_from=ts("2026-01-10T00:00:00Z"))]
    run = Wallets(catalog(plans=[version_plan], subs=subs))
    # the MRC is not pro-rated: the whole of January, in advance; the add-on: 22 days of
    # 0.62 a month (0.02 a day) = 0.44, at the close
    assert _charges(run, "t1", ts("2026-01-15T00:00:00Z")) == [
        ("mrc", SIM1, 3_100_000, "2026-01-01")
    ]
    assert _charges(run, "t2", FEB1) == [
        ("mrc", SIM1, 3_100_000, "2026-02-01"),
        ("addon_mrc", f"{SIM1}/static-ip", 440_000, "2026-01-01"),
    ]


def test_a_pool_fee_pro_rates_by_the_days_it_had_a_sim() -> None:
    pool = static_pool(price="31", prorate_fee="daily")
    subs = [sub(SIM1, pool="p1", active_from=ts("2026-01-11T00:00:00Z"))]
    run = Wallets(catalog(pools=[pool], subs=subs))
    # a SIM from the 11th: 21 days of 31.00 a month
    assert _charges(run, "t1", FEB1) == [("pool_fee", "pool:p1", 21_000_000, "2026-01-01")]


# -- on a Draft: the pieces of a cycle and what they cost --------------------------------


def test_a_sim_that_changed_plan_is_charged_by_the_days_on_each() -> None:
    """3.10 a month (0.10 a day) until the 11th, 6.20 (0.20 a day) from then: 10 days at
    0.10 and 21 at 0.20."""
    cat = catalog(plans=[plan("a", mrc="3.10"), plan("b", mrc="6.20")], subs=[sub(SIM1, plan="a")])
    jan11 = ts("2026-01-11T00:00:00Z")
    run = Wallets(cat).given(change_plan("cp1", SIM1, "b", at=jan11))
    d = Draft(run.state, "k", cat, cat.wallets["w1"])
    jan = cycle_of(JAN1, 1)
    assert [plan_id for _, plan_id in segments(d, cat.subscriptions[SIM1], jan)] == ["a", "b"]
    assert sim_amount(d, cat.subscriptions[SIM1], jan, lambda v: v.mrc) == 1_000_000 + 4_200_000


def test_a_pool_fee_counts_the_days_it_had_a_sim() -> None:
    pool = static_pool()
    cat = catalog(subs=[sub(SIM1, pool="p1", active_from=ts("2026-01-22T00:00:00Z"))], pools=[pool])
    d = Draft(initial_state("w1"), "k", cat, cat.wallets["w1"])
    assert pool_amount(d, pool, cycle_of(JAN1, 1), fee=3_100_000) == 1_000_000  # 10 days
