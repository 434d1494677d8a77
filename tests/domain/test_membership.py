"""Who was in a pool during a cycle, and the allowance that makes: a SIM counts from the
instant it arrived, for the whole cycle unless the pool pro-rates by day, and never stops
counting when it leaves. (The close that uses the final allowance: test_closing.py.)"""

from __future__ import annotations

from engine.domain.cycles import cycle_of
from engine.domain.membership import days_in, member_days, pool_allowance
from engine.domain.state import initial_state

from .builders import (
    DAY,
    MB,
    SIM1,
    SIM2,
    T0,
    catalog,
    flexible_pool,
    static_pool,
    sub,
    ts,
)

JAN = cycle_of(T0, 1)  # 31 days
JAN10 = ts("2026-01-10T00:00:00Z")
JAN20 = ts("2026-01-20T00:00:00Z")
FEB1 = ts("2026-02-01T00:00:00Z")


def test_a_stint_counts_its_first_day_and_not_the_day_it_ends() -> None:
    assert days_in(sub(active_from=0), JAN) == 31
    assert days_in(sub(active_from=JAN10 + 3600), JAN) == 22  # 10th to 31st
    assert days_in(sub(active_from=JAN10, active_to=JAN20), JAN) == 10
    assert days_in(sub(active_from=FEB1), JAN) == 0


def test_a_flexible_pool_grows_as_sims_arrive_and_does_not_shrink() -> None:
    pool = flexible_pool(per_sim=5 * MB)
    subs = [sub(SIM1, pool="p1"), sub(SIM2, pool="p1", active_from=JAN10, active_to=JAN20)]
    cat = catalog(pools=[pool], subs=subs)
    state = initial_state("w1")
    assert pool_allowance(state, cat, pool, JAN, T0) == 5 * MB  # SIM2 not arrived yet
    assert pool_allowance(state, cat, pool, JAN, JAN10) == 10 * MB
    assert pool_allowance(state, cat, pool, JAN, FEB1) == 10 * MB  # gone, still counted


def test_daily_pro_rating_counts_sim_days_over_the_cycles_days() -> None:
    pool = flexible_pool(per_sim=31 * MB, prorate_allowance="daily")
    subs = [sub(SIM1, pool="p1", active_from=JAN10, active_to=JAN20)]
    cat = catalog(pools=[pool], subs=subs)
    assert pool_allowance(initial_state("w1"), cat, pool, JAN, FEB1) == 10 * MB


def test_a_static_pool_pro_rated_counts_the_days_it_had_any_sim() -> None:
    pool = static_pool(allowance=31 * MB, prorate_allowance="daily")
    subs = [
        sub(SIM1, pool="p1", active_from=JAN10, active_to=JAN20),
        sub(SIM2, pool="p1", active_from=JAN10 + 5 * DAY, active_to=JAN20 + 2 * DAY),
    ]
    cat = catalog(pools=[pool], subs=subs)
    state = initial_state("w1")
    assert member_days(state, cat, pool, JAN, FEB1) == 12  # 10th to 21st: overlaps once
    assert pool_allowance(state, cat, pool, JAN, FEB1) == 12 * MB
