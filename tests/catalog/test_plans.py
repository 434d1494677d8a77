"""A plan's rate as written: flat (``price``) or graduated (``tiers``, the last one open)."""

from __future__ import annotations

from engine.catalog.plans import read_rate
from engine.catalog.reader import Ctx
from engine.catalog.yaml_source import Source
from engine.domain.catalog import Rate, Tier
from engine.domain.money import parse_price
from engine.domain.units import DEFAULT_PRICE_UNIT, unit_size

MB = unit_size("data", "MB")


def ctx() -> Ctx:
    return Ctx(Source("catalog.yaml", None))


def test_a_flat_price_is_one_open_tier_per_the_unit_given() -> None:
    c = ctx()
    rate = read_rate(c, "rate", {"price": "0.01", "per": "MB"}, "data")
    assert rate == Rate(tiers=(Tier(None, parse_price("0.01")),), per=MB)
    assert c.issues == []


def test_without_per_the_services_default_unit_is_priced() -> None:
    rate = read_rate(ctx(), "rate", {"price": "0.01"}, "data")
    assert rate is not None and rate.per == unit_size("data", DEFAULT_PRICE_UNIT["data"])


def test_tiers_climb_and_the_last_one_prices_all_the_rest() -> None:
    c = ctx()
    tiers = [{"up_to": "1GB", "price": "0.02"}, {"price": "0.01"}]
    rate = read_rate(c, "rate", {"per": "MB", "tiers": tiers}, "data")
    assert rate is not None and c.issues == []
    assert rate.tiers == (
        Tier(unit_size("data", "GB"), parse_price("0.02")),
        Tier(None, parse_price("0.01")),
    )


def test_tiers_out_of_order_or_without_an_open_end_are_refused() -> None:
    c = ctx()
    tiers = [{"up_to": "1GB", "price": "0.02"}, {"up_to": "1MB", "price": "0.01"}]
    read_rate(c, "rate", {"tiers": tiers}, "data")  # any issue fails the whole load
    assert [(i.path, i.message) for i in c.issues] == [
        ("rate.tiers[1].up_to", "the last tier has no 'up_to': it prices all the rest"),
        ("rate.tiers[1].up_to", "must be above the tier before it (1GB), got 1MB"),
    ]


def test_a_price_and_tiers_together_are_refused() -> None:
    c = ctx()
    both = {"price": "0.01", "tiers": [{"price": "0.01"}]}
    assert read_rate(c, "rate", both, "data") is None
    assert [i.message for i in c.issues] == ["give either 'price' or 'tiers', not both"]
