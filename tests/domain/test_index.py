"""The catalog index: built once with the catalog, immutable, and never shared between
catalogs (nothing in the domain caches at module level)."""

from __future__ import annotations

import math

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain import UsageRated
from engine.domain.catalog import Share, Subscription
from engine.domain.cycles import cycle_of
from engine.domain.draft import splits
from engine.domain.index import (
    MAX_SPLIT_TOTAL,
    PoolMembers,
    _allocated,
    cycle_at,
    members_of,
    pool_members,
    rate_table,
    splitter,
)
from engine.domain.money import allocate

from .builders import (
    MB,
    SIM1,
    SIM2,
    SIM3,
    T0,
    Wallets,
    catalog,
    cdr,
    flexible_pool,
    one,
    plan,
    rate,
    sub,
    ts,
)


def _priced(price: str):  # type: ignore[no-untyped-def]
    return catalog(plans=[plan(rates={"data": {"EU": rate(price, MB)}})])


def test_two_catalogs_in_one_process_rate_by_their_own_prices() -> None:
    cheap, dear = _priced("0.01"), _priced("0.02")
    for _ in range(2):  # and again, once each has rated: nothing learnt carries over
        a = one(Wallets(cheap).when(cdr("c1", MB)), UsageRated)
        b = one(Wallets(dear).when(cdr("c1", MB)), UsageRated)
        assert (a.amount, b.amount) == (10_000, 20_000)


def test_a_catalog_derived_with_other_plans_does_not_read_the_old_tables() -> None:
    cheap = _priced("0.01")
    dear = msgspec.structs.replace(cheap, plans=_priced("0.02").plans)
    assert one(Wallets(dear).when(cdr("c1", MB)), UsageRated).amount == 20_000


def test_the_index_is_built_with_the_catalog_and_frozen() -> None:
    cat = _priced("0.01")
    assert cat.index is not None
    version = cat.plans["basic"].versions[0]
    assert rate_table(cat, "basic", version) is cat.index.rate_tables[("basic", 1)]
    with pytest.raises(TypeError):
        cat.index.rate_tables[("basic", 2)] = cat.index.rate_tables[("basic", 1)]  # type: ignore[index]
    with pytest.raises(AttributeError):
        cat.index.members = {}  # type: ignore[misc]


def test_a_catalog_without_an_index_rates_the_same() -> None:
    cat = _priced("0.01")
    bare = msgspec.structs.replace(cat, index=None)
    assert Wallets(bare).when(cdr("c1", MB)) == Wallets(cat).when(cdr("c1", MB))


def test_pool_members_count_the_subscriptions_active_in_a_cycle() -> None:
    start, end = ts("2026-01-01T00:00:00Z"), ts("2026-02-01T00:00:00Z")
    subs = [
        sub(SIM1, pool="p1"),
        sub(SIM2, pool="p1", active_from=end),  # starts after the cycle
        sub(SIM3, pool="p1", active_to=start),  # ended as it began
        sub("8900000000000000004", pool="p1", active_from=start + 5, active_to=start + 9),
        sub("8900000000000000005", pool="p1", active_from=start + 9, active_to=start + 9),
        sub("8900000000000000006", pool=None),
    ]
    cat = catalog(subs=subs, pools=[flexible_pool()])
    cycle = cycle_of(start, 1)
    members = pool_members(cat.pools["p1"], list(cat.subscriptions.values()))
    assert isinstance(members, PoolMembers)
    expected = sum(
        1
        for s in subs
        if s.pool == "p1"
        and s.active_from < cycle.end
        and (s.active_to is None or s.active_to > cycle.start)
    )
    assert members.active_in(cycle) == expected == 3
    assert members_of(cat, cat.pools["p1"]).active_in(cycle) == expected
    bare = msgspec.structs.replace(cat, index=None)
    assert members_of(bare, bare.pools["p1"]).active_in(cycle) == expected


def test_odd_members_end_before_they_start() -> None:
    odd = Subscription(SIM1, "w1", "basic", "p1", T0 + 100, T0)
    cat = catalog(subs=[odd], pools=[flexible_pool()])
    members = pool_members(cat.pools["p1"], [odd])
    assert members.odd == (odd,)
    assert members.active_in(cycle_of(T0, 1)) == 1


WEIGHTS = [0, 1, 3, 7, 10, 33, 60, 116_667, 300_000, 333_333, 550_000, 600_000]
"""Small ones (tabulated), and four-decimal percentages whose totals are not (55/33.3333/…)."""


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(WEIGHTS), min_size=1, max_size=5),
    st.integers(min_value=-(10**12), max_value=10**12),
)
def test_a_splitter_splits_as_allocate_does(weights: list[int], amount: int) -> None:
    shares = tuple(Share(f"p{i}", w) for i, w in enumerate(weights))
    found = splitter(shares)
    if found is None:  # nothing to split by: allocate refuses it
        assert sum(weights) == 0
        return
    tabulated = sum(weights) // math.gcd(*weights) <= MAX_SPLIT_TOTAL
    assert bool(found.parts) == tabulated
    expected = tuple(p for p in allocate(amount, tuple(weights)) if p) if amount else ()
    assert tuple(line.amount for line in found.lines(amount)) == expected


@pytest.mark.parametrize("amount", [1, 2, 3, 999_999, 1_000_000, 1_000_001, 620_000, 7_910_156])
def test_a_split_too_large_to_tabulate_gives_the_leftover_as_allocate_does(amount: int) -> None:
    weights = (550_000, 333_333, 116_667)  # 55 / 33.3333 / 11.6667 %: a total of 10^6
    found = splitter(tuple(Share(f"p{i}", w) for i, w in enumerate(weights)))
    assert found is not None and not found.parts
    expected = tuple(p for p in allocate(amount, weights) if p)
    assert tuple(line.amount for line in found.lines(amount)) == expected


def test_a_plan_versions_rate_table_carries_its_usage_split() -> None:
    cat = _priced("0.01")
    version = cat.plans["basic"].versions[0]
    table = rate_table(cat, "basic", version)
    assert table.usage is cat.index.splitters[version.usage_splits]  # type: ignore[union-attr]
    bare = msgspec.structs.replace(cat, index=None)
    assert rate_table(bare, "basic", version).usage is None


def test_the_catalogs_splits_are_tabulated_and_split_as_without_the_index() -> None:
    cat = _priced("0.01")
    shares = cat.plans["basic"].versions[0].usage_splits
    assert shares in cat.index.splitters  # type: ignore[union-attr]
    bare = msgspec.structs.replace(cat, index=None)
    for amount in (1, 99, 12_345_678):
        assert splits(cat, shares, amount) == splits(bare, shares, amount)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(WEIGHTS[1:]), min_size=1, max_size=4),
    st.sets(st.integers(min_value=-(10**9), max_value=10**9), max_size=5),
)
def test_the_fixed_prices_lines_are_those_worked_out_per_amount(
    weights: list[int], fixed: set[int]
) -> None:
    shares = tuple(Share(f"p{i}", w) for i, w in enumerate(weights))
    plain, memo = splitter(shares), splitter(shares, fixed)
    assert plain is not None and memo is not None
    assert set(memo.fixed) == fixed
    for amount in fixed:
        assert memo.fixed[amount] == plain.lines(amount)


def test_the_index_holds_a_calendar_per_anchor_day_of_its_wallets() -> None:
    cat = _priced("0.01")
    days = {w.cycle_anchor_day for w in cat.wallets.values()}
    assert set(cat.index.calendars) == days  # type: ignore[union-attr]
    bare = msgspec.structs.replace(cat, index=None)
    for when in (T0, T0 + 40 * 86400, 0, 2**33):
        for day in (*days, 27):  # 27: no wallet's, so no calendar: by the calendar itself
            assert cycle_at(cat, when, day) == cycle_at(bare, when, day) == cycle_of(when, day)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=7), min_size=1, max_size=6).filter(any),
    st.integers(min_value=1, max_value=10**6),
)
def test_the_leftover_goes_as_allocate_gives_it_whatever_is_left(
    weights: list[int], amount: int
) -> None:
    # small equal weights leave every count of leftover units, ties included
    total = sum(weights)
    assert _allocated(amount, tuple(weights), total) == list(allocate(amount, tuple(weights)))
