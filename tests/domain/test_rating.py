"""Rating one record: volume rounding, zones, filters, graduated tiers, and the worked examples."""

from __future__ import annotations

import pytest

from engine.domain.catalog import Filter, Rounding, TimeWindow
from engine.domain.events import CdrRejected, UsageRated
from engine.domain.money import parse_price
from engine.domain.rating import price, rounded, select_rate
from engine.domain.zones import zone_of

from .builders import (
    KB,
    MB,
    SIM1,
    T0,
    Wallets,
    catalog,
    cdr,
    dt,
    one,
    paid,
    plan,
    rate,
    sub,
    tiered,
    ts,
    version,
)

# -- rounding --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("volume", "rounding", "billed"),
    [
        (0, Rounding(60, 60), 0),  # nothing carried, nothing billed
        (0, Rounding(60, 60, minimum=100), 0),
        (1, Rounding(60, 60), 60),
        (60, Rounding(60, 60), 60),
        (61, Rounding(60, 60), 120),
        (61, Rounding(60, 1), 61),
        (1, Rounding(60, 1), 60),
        (1025, Rounding(KB, KB), 2 * KB),
        (10, Rounding(1, 1, minimum=100), 100),
        (150, Rounding(100, 20, minimum=100), 160),
    ],
)
def test_rounded(volume: int, rounding: Rounding, billed: int) -> None:
    assert rounded(volume, rounding) == billed


# -- zones -----------------------------------------------------------------------------


def test_exact_network_wins_over_country_wildcard() -> None:
    networks = {"262": "EU", "262-07": "PREMIUM"}
    assert zone_of(networks, "262", "07") == "PREMIUM"
    assert zone_of(networks, "262", "01") == "EU"
    assert zone_of(networks, "999", "01") is None


def test_exact_network_wins_in_the_wallet_too() -> None:
    rates = {"data": {"EU": rate("0.01", MB), "PREMIUM": rate("1", MB)}}
    run = Wallets(catalog(plans=[plan(rates=rates)]))
    assert one(run.when(cdr("c1", MB, network="262-07")), UsageRated).zone == "PREMIUM"
    assert one(run.when(cdr("c2", MB, network="262-01")), UsageRated).zone == "EU"
    # 208 has only two exact networks and no wildcard: 208-20 is in no zone.
    assert one(run.when(cdr("c3", MB, network="208-20")), CdrRejected).reason == "unknown_zone"


# -- graduated tiers -------------------------------------------------------------------


def test_price_sums_tier_parts_exactly_then_rounds_once() -> None:
    # 1.5 micro per unit up to 3 units, then 0.5 micro per unit.
    r = tiered(1, (3, "0.0000015"), (None, "0.0000005"))
    # 2 used before; 2 more: 1 unit at 1.5 + 1 unit at 0.5 = 2.0 micro exactly.
    # Rounding each part half-up would give 2 + 1 = 3.
    assert price(r, 2, 2) == 2
    assert price(r, 0, 1) == 2  # 1.5 -> 2
    assert price(r, 10, 3) == 2  # 1.5 -> 2, all in the last tier
    assert price(r, 0, 0) == 0


def test_price_skips_tiers_already_used_up() -> None:
    r = tiered(MB, (10 * MB, "0.05"), (20 * MB, "0.03"), (None, "0.01"))
    # 15 MB used: the first tier is full, 5 MB left in the second, then the open tier.
    # 5 MB * 0.03 + 3 MB * 0.01 = 0.15 + 0.03 = 0.18 EUR
    assert price(r, 15 * MB, 8 * MB) == 180_000


# -- filters ---------------------------------------------------------------------------


def test_select_rate_first_matching_filter_wins() -> None:
    night = rate("0.001", MB)
    iot = rate("0.002", MB)
    v = version(
        filters=[
            Filter("iot-apn", apns=("iot.apn",), rate=iot),
            Filter("night", window=TimeWindow(22 * 60, 6 * 60), rate=night),
        ]
    )
    local_night = dt(ts("2026-01-05T23:00:00Z"))
    assert select_rate(v, "data", "EU", "iot.apn", None, local_night) == (iot, v.filters[0])
    assert select_rate(v, "data", "EU", "other", None, local_night) == (night, v.filters[1])
    base = v.rates["data"]["EU"]
    assert select_rate(v, "data", "EU", "other", None, dt(ts("2026-01-05T12:00:00Z"))) == (
        base,
        None,
    )


def test_filter_criteria_all_must_match() -> None:
    cheap = rate("0.001", MB)
    v = version(
        filters=[
            Filter("nb-iot-eu", services=("data",), zones=("EU",), rats=("NB-IoT",), rate=cheap)
        ]
    )
    noon = dt(ts("2026-01-05T12:00:00Z"))
    assert select_rate(v, "data", "EU", None, "NB-IoT", noon)[0] == cheap
    assert select_rate(v, "data", "US", None, "NB-IoT", noon)[1] is None
    assert select_rate(v, "data", "EU", None, "4G", noon)[1] is None
    assert select_rate(v, "data", "EU", None, None, noon)[1] is None
    assert select_rate(v, "sms", "EU", None, "NB-IoT", noon)[1] is None


def test_filter_without_rate_keeps_the_zone_rate() -> None:
    v = version(filters=[Filter("route", apns=("corp",), payer="w2")])
    got, matched = select_rate(v, "data", "EU", "corp", None, dt(T0))
    assert got == v.rates["data"]["EU"]
    assert matched is not None and matched.payer == "w2"


# -- worked examples through the wallet ------------------------------------------------


def test_worked_example_data_per_kb() -> None:
    # given a plan at 0.0195 EUR/MB, rounded up per 1 KB
    cat = catalog(
        plans=[
            plan(rates={"data": {"EU": rate("0.0195", MB)}}, rounding={"data": Rounding(KB, KB)})
        ]
    )
    # when 1,234,567 bytes are used
    rated = one(Wallets(cat).when(cdr("c1", 1_234_567)), UsageRated)
    # then: 1,234,567 / 1,024 = 1,205.63 -> 1,206 KB = 1,234,944 bytes
    assert rated.rated_volume == 1_234_944
    # 1,234,944 * 19,500,000,000 / (1,048,576 * 10^6) = 22,965.8203125 -> 22,966 micro-units
    assert rated.amount == 22_966
    # the opening grant pays it, and the revenue lines (70/20/10) sum to it exactly
    assert paid(rated) == 22_966
    assert [(s.provider, s.amount) for s in rated.splits] == [
        ("op", 16_076),
        ("platform", 4_593),
        ("reseller", 2_297),
    ]


@pytest.mark.parametrize(
    ("rounding", "seconds", "billed", "amount"),
    [
        # 0.12 EUR per minute = 2,000 micro-units per second
        (Rounding(60, 60), 61, 120, 240_000),
        (Rounding(60, 1), 61, 61, 122_000),
        (Rounding(60, 60), 1, 60, 120_000),
        (Rounding(60, 1), 1, 60, 120_000),
        (Rounding(60, 1), 125, 125, 250_000),
        (Rounding(60, 60), 125, 180, 360_000),
    ],
)
def test_voice_60_60_versus_60_1(
    rounding: Rounding, seconds: int, billed: int, amount: int
) -> None:
    cat = catalog(plans=[plan(rounding={"voice": rounding})])
    rated = one(Wallets(cat).when(cdr("v1", seconds, service="voice")), UsageRated)
    assert (rated.rated_volume, rated.amount) == (billed, amount)


def test_graduated_tier_boundary_crossed_inside_one_cdr() -> None:
    # given 0.05 EUR/MB for the first 10 MB of the cycle, then 0.02 EUR/MB
    rates = {"data": {"EU": tiered(MB, (10 * MB, "0.05"), (None, "0.02"))}}
    run = Wallets(catalog(plans=[plan(rates=rates)]))
    # and 8 MB already used this cycle (8 * 0.05 = 0.40 EUR)
    assert one(run.when(cdr("c1", 8 * MB)), UsageRated).amount == 400_000
    # when 5 MB more: 2 MB at 0.05 + 3 MB at 0.02 = 0.10 + 0.06 = 0.16 EUR
    assert one(run.when(cdr("c2", 5 * MB, at=T0 + 60)), UsageRated).amount == 160_000
    # then the rest of the cycle is in the cheap tier
    assert one(run.when(cdr("c3", MB, at=T0 + 120)), UsageRated).amount == 20_000


def test_graduated_tiers_restart_each_cycle_and_are_per_sim() -> None:
    rates = {"data": {"EU": tiered(MB, (10 * MB, "0.05"), (None, "0.02"))}}
    cat = catalog(plans=[plan(rates=rates)], subs=[sub(SIM1), sub("8900000000000000002")])
    run = Wallets(cat)
    run.given(cdr("c1", 10 * MB))
    # another SIM starts at the top tier
    assert one(run.when(cdr("c2", MB, iccid="8900000000000000002")), UsageRated).amount == 50_000
    # same SIM, same cycle: cheap tier
    assert one(run.when(cdr("c3", MB, at=T0 + 1)), UsageRated).amount == 20_000
    # same SIM, next cycle (February): back to the top tier
    feb = ts("2026-02-02T00:00:00Z")
    assert one(run.when(cdr("c4", MB, at=feb)), UsageRated).amount == 50_000


def test_time_window_across_midnight_uses_the_cdr_own_offset() -> None:
    # given a night rate from 22:00 to 06:00 local time (10x cheaper)
    night = Filter("night", window=TimeWindow(22 * 60, 6 * 60), rate=rate("0.001", MB))
    run = Wallets(catalog(plans=[plan(filters=[night])]))

    def rated(cdr_id: str, instant: str, offset: int) -> UsageRated:
        return one(run.when(cdr(cdr_id, MB, at=ts(instant), offset=offset)), UsageRated)

    # 21:30 UTC is 23:30 at +02:00: night, although UTC is before 22:00
    assert rated("a", "2026-01-05T21:30:00Z", 120).filter == "night"
    # 10:59 UTC is 05:59 at -05:00: still night, past midnight
    assert rated("b", "2026-01-05T10:59:00Z", -300).filter == "night"
    # 11:00 UTC is 06:00 at -05:00: the window's end is exclusive
    day = rated("c", "2026-01-05T11:00:00Z", -300)
    assert (day.filter, day.amount) == (None, 10_000)
    # 00:59 UTC is 21:59 at -03:00: day rate, although UTC is inside the window
    assert rated("d", "2026-01-06T00:59:00Z", -180).filter is None
    # 22:00 sharp local is inside (start inclusive)
    night_rated = rated("e", "2026-01-05T22:00:00Z", 0)
    assert (night_rated.filter, night_rated.amount) == ("night", 1_000)


def test_filter_may_override_rate_for_one_zone_only() -> None:
    promo = Filter("us-promo", zones=("US",), rate=rate("0.001", MB))
    run = Wallets(catalog(plans=[plan(filters=[promo])]))
    assert one(run.when(cdr("c1", MB, network="310-260")), UsageRated).amount == 1_000
    assert one(run.when(cdr("c2", MB, network="262-01")), UsageRated).amount == 10_000


def test_zero_volume_is_rated_at_zero() -> None:
    cat = catalog(plans=[plan(rounding={"data": Rounding(KB, KB, minimum=10 * KB)})])
    rated = one(Wallets(cat).when(cdr("c1", 0)), UsageRated)
    assert (rated.rated_volume, rated.amount, rated.debits, rated.splits) == (0, 0, (), ())


def test_price_of_single_tier_rate_uses_per() -> None:
    r = rate("0.60", 60)
    assert price(r, 0, 90) == 900_000
    assert parse_price("0.60") == 600_000_000_000


@pytest.mark.parametrize(("scope", "roaming"), [("cycle", 10_000), ("zone", 50_000)])
def test_tier_scope_decides_whether_roaming_starts_in_the_first_tier(
    scope: str, roaming: int
) -> None:
    # given 0.05 EUR/MB for the first 10 MB, then 0.01 EUR/MB, in both zones
    tiers = tiered(MB, (10 * MB, "0.05"), (None, "0.01"))
    rates = {"data": {"EU": tiers, "US": tiers}}
    run = Wallets(catalog(plans=[plan(rates=rates, tier_scope=scope)]))
    # and 12 MB used at home this cycle
    run.given(cdr("c1", 12 * MB))
    # when 1 MB in the US: per SIM and cycle it is in the cheap tier already; per zone, the
    # US counter starts from nothing, in the first tier
    rated = one(run.when(cdr("c2", MB, at=T0 + 60, network="310-260")), UsageRated)
    assert (rated.zone, rated.amount, rated.tiers_per_zone) == ("US", roaming, scope == "zone")
    # and the home counter is not moved by the roaming volume when counted per zone
    home = one(run.when(cdr("c3", MB, at=T0 + 120)), UsageRated)
    assert home.amount == 10_000
