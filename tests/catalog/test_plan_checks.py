"""Checks on plans: rates, tiers, rounding, versions, splits and filters."""

from __future__ import annotations

import pytest

from engine.catalog import load_catalog
from engine.domain.catalog import AutoTopUp, OpeningGrant, Rounding, TimeWindow

from .conftest import (
    DELETE,
    Case,
    Changes,
    Data,
    Expected,
    Write,
    assert_issues,
    case_id,
    issues_of,
)

V = "plans[0].versions[0]"
RATE = {"price": "0.01", "per": "MB"}

CASES: list[Case] = [
    # rates and tiers
    ([(f"{V}.rates.data.EU.price", "-0.01")], [(f"{V}.rates.data.EU.price", "cannot be negative")]),
    ([(f"{V}.rates.data.EU.price", 0.01)], [(f"{V}.rates.data.EU.price", "quoted")]),
    (
        [(f"{V}.rates.data.EU.price", "0.0000000000001")],
        [(f"{V}.rates.data.EU.price", "more than 12 decimal places")],
    ),
    ([(f"{V}.rates.data.EU.per", "MiB")], [(f"{V}.rates.data.EU.per", "unknown unit 'MiB'")]),
    ([(f"{V}.rates.fax", {"EU": RATE})], [(f"{V}.rates.fax", "unknown service 'fax'")]),
    (
        [(f"{V}.rates.data.EU.prcie", "1")],
        [
            (f"{V}.rates.data.EU.prcie", "did you mean 'price'?"),
        ],
    ),
    ([(f"{V}.rates.data.EU", {"per": "MB"})], [(f"{V}.rates.data.EU.price", "missing")]),
    (
        [(f"{V}.rates.data.EU.tiers", [{"price": "1"}])],
        [(f"{V}.rates.data.EU", "either 'price' or 'tiers'")],
    ),
    (
        [(f"{V}.rates.data.EU", {"tiers": [{"price": "0.2"}, {"price": "0.1"}]})],
        [(f"{V}.rates.data.EU.tiers[0].up_to", "only the last tier may leave out 'up_to'")],
    ),
    (
        [
            (
                f"{V}.rates.data.EU",
                {"tiers": [{"up_to": "1MB", "price": "0.2"}, {"up_to": "2MB", "price": "0.1"}]},
            )
        ],
        [(f"{V}.rates.data.EU.tiers[1].up_to", "the last tier has no 'up_to'")],
    ),
    (
        [
            (
                f"{V}.rates.data.EU",
                {
                    "tiers": [
                        {"up_to": "2MB", "price": "0.2"},
                        {"up_to": "2048KB", "price": "0.1"},
                        {"price": "0.05"},
                    ]
                },
            )
        ],
        [(f"{V}.rates.data.EU.tiers[1].up_to", "must be above the tier before it (2MB)")],
    ),
    (
        [(f"{V}.rates.data.EU", {"tiers": [{"up_to": "1XB", "price": "0.2"}, {"price": "0.1"}]})],
        [(f"{V}.rates.data.EU.tiers[0].up_to", "unknown unit 'XB'")],
    ),
    ([(f"{V}.rates.data.EU", {"tiers": []})], [(f"{V}.rates.data.EU.tiers", "at least one")]),
    # rounding
    (
        [(f"{V}.rounding", {"data": {"increment": "1KB", "first": "1KB"}})],
        [(f"{V}.rounding.data.increment", "either 'increment' or 'first' and 'next'")],
    ),
    (
        [(f"{V}.rounding", {"voice": {"first": 0}})],
        [(f"{V}.rounding.voice.first", "must be more than zero")],
    ),
    # versions
    ([(f"{V}.version", 0)], [(f"{V}.version", "must be at least 1")]),
    ([(f"{V}.effective_from", "2026-01-01")], [(f"{V}.effective_from", "has no UTC offset")]),
    (
        [(f"{V}.effective_from", "2026-01-01T00:00:00.5Z")],
        [(f"{V}.effective_from", "not a whole second")],
    ),
    ([(f"{V}.effective_from", "1st of January")], [(f"{V}.effective_from", "not an RFC 3339")]),
    ([(f"{V}.currency", "eur")], [(f"{V}.currency", "3 capital letters")]),
    ([(f"{V}.mrc", "-1.00")], [(f"{V}.mrc", "cannot be negative")]),
    ([(f"{V}.restart_fee", "1.0000001")], [(f"{V}.restart_fee", "more than 6 decimal places")]),
    # splits
    (
        [(f"{V}.splits.usage", {"op": 60, "ghost": 40})],
        [(f"{V}.splits.usage.ghost", "unknown provider 'ghost'")],
    ),
    (
        [(f"{V}.splits.usage", {"op": 60, "platform": "40.00001"})],
        [(f"{V}.splits.usage.platform", "at most 4 decimals")],
    ),
    (
        [(f"{V}.splits.usage", {"op": 60, "platform": 0})],
        [(f"{V}.splits.usage.platform", "more than 0")],
    ),
    (
        [(f"{V}.splits.usage", {"op": "33.3333", "platform": "66.6666"})],
        [(f"{V}.splits.usage", "shares sum to 99.9999%, not 100%")],
    ),
    ([(f"{V}.splits.usage", {})], [(f"{V}.splits.usage", "at least one provider")]),
    ([(f"{V}.splits.mrc", DELETE)], [(f"{V}.splits.mrc", "missing required key 'mrc'")]),
    ([(f"{V}.addons[0].splits", DELETE)], [(f"{V}.addons[0].splits", "missing required key")]),
    # filters
    (
        [(f"{V}.filters", [{"name": "f", "payer": "ghost"}])],
        [(f"{V}.filters[0].payer", "unknown wallet 'ghost'")],
    ),
    (
        [(f"{V}.filters", [{"name": "f", "match": {"rats": ["6G"]}, "payer": "w2"}])],
        [(f"{V}.filters[0].match.rats[0]", "unknown radio technology '6G'")],
    ),
    (
        [(f"{V}.filters", [{"name": "f", "match": {"services": ["fax"]}, "payer": "w2"}])],
        [(f"{V}.filters[0].match.services[0]", "unknown service 'fax'")],
    ),
    (
        [(f"{V}.filters", [{"name": "f", "match": {"zones": ["EUX"]}, "payer": "w2"}])],
        [(f"{V}.filters[0].match.zones[0]", "unknown zone 'EUX'")],
    ),
    (
        [(f"{V}.filters", [{"name": "f", "match": {"time": "24:00-06:00"}, "payer": "w2"}])],
        [(f"{V}.filters[0].match.time", "from 00:00 to 23:59")],
    ),
    (
        [(f"{V}.filters", [{"name": "f", "match": {"time": "06:00-06:00"}, "payer": "w2"}])],
        [(f"{V}.filters[0].match.time", "cannot start where it ends")],
    ),
    (
        [(f"{V}.filters", [{"name": "f", "match": {"time": "6-7"}, "payer": "w2"}])],
        [(f"{V}.filters[0].match.time", "'HH:MM-HH:MM'")],
    ),
    (
        [(f"{V}.filters", [{"name": "f", "match": {"services": ["fax"]}, "rate": RATE}])],
        [(f"{V}.filters[0].match.services[0]", "unknown service 'fax'")],
    ),
    (
        [(f"{V}.filters", [{"name": "f", "rate": RATE}])],
        [(f"{V}.filters[0].rate", "exactly one service")],
    ),
    (
        [(f"{V}.filters", [{"name": "f", "match": {"services": ["data"]}}])],
        [(f"{V}.filters[0]", "needs a 'rate', a 'payer', or both")],
    ),
    (
        [("wallets[1].currency", "USD"), (f"{V}.filters", [{"name": "f", "payer": "w2"}])],
        [(f"{V}.filters[0].payer", "wallet 'w2' is in USD, this version in EUR")],
    ),
]


@pytest.mark.parametrize(("changes", "expected"), CASES, ids=map(case_id, CASES))
def test_one_mistake_in_a_plan_gives_exactly_its_issues(
    write: Write, base: Data, changes: Changes, expected: Expected
) -> None:
    assert_issues(write, base, changes, expected)


def test_versions_must_be_unique_and_in_time_order(write: Write, base: Data) -> None:
    first = base["plans"][0]["versions"][0]
    base["plans"][0]["versions"] += [
        {**first, "version": 2, "effective_from": "2026-06-01T00:00:00Z"},
        {**first, "version": 2, "effective_from": "2026-03-01T00:00:00+02:00"},
    ]
    issues = issues_of(write(base))

    assert [(i.path, i.message) for i in issues] == [
        (
            "plans[0].versions[2].version",
            "duplicate version 2 (first at plans[0].versions[1].version)",
        ),
        (
            "plans[0].versions[2].effective_from",
            "must be later than the version before it (2026-06-01T00:00:00Z)",
        ),
    ]


def test_written_values_are_converted(write: Write, base: Data) -> None:
    base["settings"] = {"dedup_window_days": 7}
    version = base["plans"][0]["versions"][0]
    version["rounding"] = {"voice": {"first": "1min", "next": 1}, "data": {"minimum": "10KB"}}
    version["rates"]["sms"] = {"EU": {"price": "0.05"}}
    version["rates"]["voice"] = {"EU": {"price": "0.10", "per": "minute"}}
    version["filters"] = [
        {
            "name": "night",
            "match": {"services": ["data"], "rats": ["NB-IoT"], "time": "22:30-06:00"},
            "rate": {"price": "0.001", "per": "KB"},
            "payer": "w2",
        }
    ]
    base["wallets"][0].update(
        overdraft_limit="10",
        suspend_at="-10.00",
        thresholds=["5.00", "20.00", "-2.50"],
        auto_top_up={"below": "5", "amount": "50"},
        opening_balance=[
            {"kind": "promotion", "amount": "3.00", "expires_at": "2026-10-15T02:00:00+02:00"},
            {"kind": "top_up", "amount": "100", "priority": 5},
        ],
    )
    catalog = load_catalog(write(base))

    assert catalog.dedup_window == 7 * 86400
    version_ = catalog.plans["p1"].versions[0]
    assert version_.rounding["voice"] == Rounding(60, 1, 0)
    assert version_.rounding["data"] == Rounding(1024, 1024, 10240)
    assert version_.rates["sms"]["EU"].per == 1
    assert version_.rates["voice"]["EU"].per == 60
    night = version_.filters[0]
    assert night.window == TimeWindow(22 * 60 + 30, 6 * 60)
    assert (night.services, night.rats, night.payer) == (("data",), ("NB-IoT",), "w2")
    assert night.rate is not None and night.rate.per == 1024
    wallet = catalog.wallets["w1"]
    assert wallet.thresholds == (20_000_000, 5_000_000, -2_500_000)
    assert (wallet.suspend_at, wallet.resume_at) == (-10_000_000, -10_000_000)
    assert wallet.auto_top_up == AutoTopUp(5_000_000, 50_000_000)
    assert wallet.opening == (
        OpeningGrant("promotion", 3_000_000, 10, 1_792_022_400),
        OpeningGrant("top_up", 100_000_000, 5, None),
    )
