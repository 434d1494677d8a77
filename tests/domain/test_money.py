"""Money: exact parsing, one half-up rounding per charge, and largest-remainder splits."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain.money import (
    MoneyError,
    allocate,
    charge_for,
    div_round_half_up,
    format_money,
    format_price,
    parse_money,
    parse_price,
)

from .builders import KB, MB


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("12.5", 12_500_000),
        ("0.000001", 1),
        ("-3", -3_000_000),
        ("+.5", 500_000),
        ("7.", 7_000_000),
        (" 1.2300000 ", 1_230_000),  # trailing zeros past 6 places are exact, so allowed
    ],
)
def test_parse_money_is_exact(text: str, micros: int) -> None:
    assert parse_money(text) == micros


@pytest.mark.parametrize(
    "text", ["", ".", "-", "1.0000001", "1e3", "1,5", "1_000", "--1", "١", "1.2.3", "NaN"]
)
def test_parse_money_rejects_what_is_not_exact_money(text: str) -> None:
    with pytest.raises(MoneyError):
        parse_money(text)


def test_parse_money_rejects_non_strings() -> None:
    with pytest.raises(MoneyError):
        parse_money(1.5)  # type: ignore[arg-type]


def test_parse_price_keeps_twelve_places() -> None:
    assert parse_price("0.0195") == 19_500_000_000
    assert parse_price("0.000000000001") == 1
    with pytest.raises(MoneyError):
        parse_price("0.0000000000001")


def test_format_round_trips() -> None:
    assert format_money(12_500_000) == "12.50"
    assert format_money(-1) == "-0.000001"
    assert format_price(parse_price("0.0195")) == "0.0195"
    assert format_price(parse_price("-2")) == "-2"


@pytest.mark.parametrize(
    ("num", "den", "out"),
    [(5, 10, 1), (4, 10, 0), (15, 10, 2), (-5, 10, -1), (-4, 10, 0), (-15, 10, -2), (0, 7, 0)],
)
def test_div_round_half_up_rounds_halves_away_from_zero(num: int, den: int, out: int) -> None:
    assert div_round_half_up(num, den) == out


def test_charge_for_worked_example() -> None:
    # 1,206 KB at 0.0195 EUR per MB:
    #   1,206 * 1,024 = 1,234,944 bytes
    #   1,234,944 B * 19,500,000,000 price units / (1,048,576 B * 1,000,000 units per micro)
    #   = 24,081,408,000 / 1,048,576 = 22,965.8203125 micro-units -> 22,966 (half-up)
    assert charge_for(1206 * KB, parse_price("0.0195"), MB) == 22_966


def test_charge_for_rounds_once_at_the_half() -> None:
    # 1 unit at 0.0000005 per unit is exactly half a micro-unit: rounds up to 1.
    assert charge_for(1, parse_price("0.0000005"), 1) == 1
    # 3 units at 0.0000005 = 1.5 micro -> 2; rounding each unit first would give 3.
    assert charge_for(3, parse_price("0.0000005"), 1) == 2
    assert charge_for(1, parse_price("0.00000049"), 1) == 0


# -- allocate --------------------------------------------------------------------------


def test_allocate_gives_leftovers_to_largest_remainders() -> None:
    # 100 by 1:1:1 -> 33.33 each, one micro left: goes to the first (ties to the earlier).
    assert allocate(100, (1, 1, 1)) == (34, 33, 33)
    # 10 by 70:20:10 is exact.
    assert allocate(10, (70, 20, 10)) == (7, 2, 1)
    # 22,966 by 70:20:10: floors 16,076 + 4,593 + 2,296 = 22,965; remainders .2 .2 .6
    assert allocate(22_966, (70, 20, 10)) == (16_076, 4_593, 2_297)


def test_allocate_mirrors_negative_amounts() -> None:
    assert allocate(-100, (1, 1, 1)) == (-34, -33, -33)


def test_allocate_zero_weight_gets_nothing() -> None:
    assert allocate(7, (0, 1, 0)) == (0, 7, 0)


@pytest.mark.parametrize("weights", [(), (0, 0), (1, -1)])
def test_allocate_rejects_bad_weights(weights: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        allocate(10, weights)


@settings(max_examples=300, deadline=None)
@given(
    amount=st.integers(-(10**12), 10**12),
    weights=st.lists(st.integers(0, 1000), min_size=1, max_size=6).filter(lambda w: sum(w) > 0),
)
def test_allocate_sums_exactly_and_each_part_is_within_one_of_its_share(
    amount: int, weights: list[int]
) -> None:
    parts = allocate(amount, tuple(weights))
    assert sum(parts) == amount
    total = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        exact = Fraction(amount * weight, total)
        assert abs(part - exact) < 1
        if weight == 0:
            assert part == 0


@settings(max_examples=200, deadline=None)
@given(
    quantity=st.integers(0, 10**12),
    price=st.integers(0, 10**13),
    per=st.sampled_from([1, 60, KB, MB]),
)
def test_charge_for_is_the_exact_product_rounded_once(quantity: int, price: int, per: int) -> None:
    exact = Fraction(quantity * price, per * 10**6)
    got = charge_for(quantity, price, per)
    assert got - Fraction(1, 2) <= exact < got + Fraction(1, 2)
