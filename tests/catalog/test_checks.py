"""Each check on its own: one mistake in a small valid catalog gives exactly its issues.

Plans have their own module, ``test_plan_checks.py``.
"""

from __future__ import annotations

import msgspec
import pytest

from engine.catalog import load_catalog
from engine.catalog.checks import check_subscription
from engine.catalog.reader import Ctx
from engine.catalog.yaml_source import Source
from engine.domain.catalog import Rounding, Wallet

from .conftest import (
    DELETE,
    Case,
    Changes,
    Data,
    Expected,
    Write,
    assert_issues,
    case_id,
)

V = "plans[0].versions[0]"
FIRST_TIME = "2026-01-01T00:00:00Z"

CASES: list[Case] = [
    # structure
    ([("wallet", [])], [("wallet", "unknown key 'wallet' (did you mean 'wallets'?)")]),
    (
        [("zones", DELETE)],
        [
            ("zones", "missing required key 'zones'"),
            (f"{V}.rates.data.EU", "unknown zone 'EU' (none are defined)"),
            ("pools[0].zones[0]", "unknown zone 'EU'"),
        ],
    ),
    ([(f"{V}.currency", DELETE)], [(f"{V}.currency", "missing required key 'currency'")]),
    ([("plans[0].versions", "v1")], [("plans[0].versions", "expected a list, got the text")]),
    ([("plans[0].versions", [])], [("plans[0].versions", "at least one version")]),
    (
        [("providers[0]", "op")],
        [
            ("providers[0]", "expected a mapping"),
            (f"{V}.splits.usage.op", "unknown provider 'op'"),
        ],
    ),
    ([("providers[0].name", 42)], [("providers[0].name", "expected a non-empty string")]),
    ([("settings", {"dedup_window_days": 0})], [("settings.dedup_window_days", "at least 1")]),
    # duplicates
    ([("providers[2]", {"id": "op"})], [("providers[2].id", "duplicate provider 'op'")]),
    ([("zones[1].id", "EU")], [("zones[1].id", "duplicate zone 'EU' (first at zones[0].id)")]),
    ([("wallets[1].id", "w1")], [("wallets[1].id", "duplicate wallet 'w1'")]),
    (
        [("plans[1]", {"id": "p1", "versions": [{}]})],
        [
            ("plans[1].id", "duplicate plan 'p1'"),
            ("plans[1].versions[0].version", "missing required key"),
            ("plans[1].versions[0].effective_from", "missing required key"),
            ("plans[1].versions[0].currency", "missing required key"),
            ("plans[1].versions[0].rates", "missing required key"),
            ("plans[1].versions[0].splits", "missing required key"),
        ],
    ),
    (
        [
            (
                "pools[1]",
                {
                    "id": "pool1",
                    "wallet": "w1",
                    "kind": "flexible",
                    "zones": ["EU"],
                    "per_sim": "1MB",
                },
            )
        ],
        [("pools[1].id", "duplicate pool 'pool1'")],
    ),
    (
        [("vouchers[1]", {"code": "V1", "wallet": "w2", "amount": "1"})],
        [("vouchers[1].code", "duplicate voucher code 'V1'")],
    ),
    (
        [(f"{V}.addons[1]", {"id": "ip", "mrc": "1", "splits": {"op": 100}})],
        [(f"{V}.addons[1].id", "duplicate addon 'ip'")],
    ),
    (
        [("subscriptions[1]", {"iccid": "894410000000000001", "wallet": "w1", "plan": "p1"})],
        [("subscriptions[1].iccid", "duplicate ICCID '894410000000000001'")],
    ),
    # networks
    (
        [("zones[1].networks[0]", "262-01")],
        [("zones[1].networks[0]", "network '262-01' is already in zone 'EU'")],
    ),
    (
        [("zones[1].networks[0]", "208-*")],
        [("zones[1].networks[0]", "network '208-*' is already in zone 'EU'")],
    ),
    ([("zones[0].networks[0]", "262-1")], [("zones[0].networks[0]", "not a network")]),
    ([("zones[0].networks[0]", "262-0001")], [("zones[0].networks[0]", "not a network")]),
    ([("zones[0].networks[0]", 26201)], [("zones[0].networks[0]", "not a network")]),
    ([("zones[1].networks", [])], [("zones[1].networks", "at least one network")]),
    # pools
    (
        [("pools[0].wallet", "ghost")],
        [
            ("pools[0].wallet", "unknown wallet 'ghost'"),
            ("subscriptions[0].pool", "belongs to wallet 'ghost', not to 'w1'"),
        ],
    ),
    ([("pools[0].zones", ["EUX"])], [("pools[0].zones[0]", "unknown zone 'EUX'")]),
    ([("pools[0].zones", [])], [("pools[0].zones", "at least one zone")]),
    ([("pools[0].kind", "elastic")], [("pools[0].kind", "unknown pool kind 'elastic'")]),
    ([("pools[0].allowance", DELETE)], [("pools[0].allowance", "missing required key")]),
    ([("pools[0].allowance", "0GB")], [("pools[0].allowance", "must be more than zero")]),
    (
        [("pools[0].per_sim", "1MB")],
        [("pools[0].per_sim", "'per_sim' does not apply to a static pool")],
    ),
    ([("pools[0].price", "5.00")], [("pools[0].splits", "a pool with a price needs a revenue")]),
    (
        [("pools[0].kind", "flexible")],
        [
            ("pools[0].allowance", "does not apply to a flexible pool"),
            ("pools[0].per_sim", "missing required key"),
        ],
    ),
    (
        [("pools[0].kind", "stacked"), ("pools[0].allowance", DELETE)],
        [("pools[0].bundles", "at least one bundle")],
    ),
    (
        [
            ("pools[0].kind", "stacked"),
            ("pools[0].allowance", DELETE),
            ("pools[0].bundles", [{"id": "b", "size": "1GB"}, {"id": "b", "size": "1GB"}]),
        ],
        [("pools[0].bundles[1].id", "duplicate bundle 'b'")],
    ),
    (
        [
            ("pools[0].kind", "stacked"),
            ("pools[0].allowance", DELETE),
            (
                "pools[0].bundles",
                [{"id": "b", "size": "1GB", "valid_from": FIRST_TIME, "valid_to": FIRST_TIME}],
            ),
        ],
        [("pools[0].bundles[0].valid_to", "later than valid_from")],
    ),
    (
        [("pools[0].kind", "adaptive"), ("pools[0].allowance", DELETE)],
        [("pools[0].tiers", "at least one tier")],
    ),
    (
        [
            ("pools[0].kind", "adaptive"),
            ("pools[0].allowance", DELETE),
            ("pools[0].tiers", [{"size": "2GB", "price": "0"}, {"size": "1GB", "price": "0"}]),
        ],
        [("pools[0].tiers[1].size", "strictly ascending")],
    ),
    (
        [
            ("pools[0].kind", "adaptive"),
            ("pools[0].allowance", DELETE),
            ("pools[0].splits", {"op": 100}),
            ("pools[0].tiers", [{"size": "1GB", "price": "5"}, {"size": "2GB", "price": "4"}]),
        ],
        [("pools[0].tiers[1].price", "must not go down")],
    ),
    (
        [("pools[0].service", "sms"), ("pools[0].allowance", 100)],
        [("subscriptions[0].pool", "covers sms, which plan 'p1' has no rates for")],
    ),
    # wallets
    (
        [("wallets[0].overdraft_limit", "-1")],
        [("wallets[0].overdraft_limit", "cannot be negative")],
    ),
    ([("wallets[0].suspend_at", "-5.00")], [("wallets[0].suspend_at", "-overdraft_limit (0.00)")]),
    (
        [("wallets[0].suspend_at", "5.00"), ("wallets[0].resume_at", "1.00")],
        [("wallets[0].resume_at", "at or above suspend_at (5.00)")],
    ),
    ([("wallets[0].cycle_anchor_day", 29)], [("wallets[0].cycle_anchor_day", "from 1 to 28")]),
    ([("wallets[0].thresholds", ["5.00", "5"])], [("wallets[0].thresholds[1]", "listed twice")]),
    ([("wallets[0].thresholds", ["five"])], [("wallets[0].thresholds[0]", "not a decimal")]),
    (
        [("wallets[0].auto_top_up", {"below": "1", "amount": "0"})],
        [("wallets[0].auto_top_up.amount", "more than zero")],
    ),
    (
        [("wallets[0].opening_balance", [{"kind": "gift", "amount": "1"}])],
        [("wallets[0].opening_balance[0].kind", "unknown grant kind 'gift'")],
    ),
    (
        [("wallets[0].currency", "USD")],
        [
            ("subscriptions[0].plan", "plan 'p1' version 1 is in EUR, but wallet 'w1' is in USD"),
        ],
    ),
    # subscriptions
    ([("subscriptions[0].iccid", "1234")], [("subscriptions[0].iccid", "18 to 22 digits")]),
    (
        [("subscriptions[0].iccid", 894410000000000001)],
        [("subscriptions[0].iccid", "a quoted string")],
    ),
    ([("subscriptions[0].iccid", DELETE)], [("subscriptions[0].iccid", "missing required key")]),
    (
        [("subscriptions[0].iccids", {"first": "894410000000000100", "count": 1})],
        [("subscriptions[0]", "either 'iccid' (one SIM) or 'iccids' (a range)")],
    ),
    (
        [
            (
                "subscriptions[1]",
                {
                    "iccids": {"first": "894410000000000100", "count": 0},
                    "wallet": "w1",
                    "plan": "p1",
                },
            )
        ],
        [("subscriptions[1].iccids.count", "from 1 to 1000000")],
    ),
    (
        [
            (
                "subscriptions[1]",
                {
                    "iccids": {"first": "894410000000000100", "count": 1_000_001},
                    "wallet": "w1",
                    "plan": "p1",
                },
            )
        ],
        [("subscriptions[1].iccids.count", "from 1 to 1000000")],
    ),
    (
        [
            (
                "subscriptions[1]",
                {
                    "iccids": {"first": "999999999999999999", "count": 2},
                    "wallet": "w1",
                    "plan": "p1",
                },
            )
        ],
        [("subscriptions[1].iccids", "runs past 18 digits")],
    ),
    ([("subscriptions[0].wallet", "ghost")], [("subscriptions[0].wallet", "unknown wallet")]),
    ([("subscriptions[0].plan", "p2")], [("subscriptions[0].plan", "unknown plan 'p2'")]),
    ([("subscriptions[0].pool", "pool2")], [("subscriptions[0].pool", "unknown pool 'pool2'")]),
    (
        [("subscriptions[0].wallet", "w2")],
        [("subscriptions[0].pool", "pool 'pool1' belongs to wallet 'w1', not to 'w2'")],
    ),
    (
        [("subscriptions[0].addons", ["ip", "ipp"])],
        [("subscriptions[0].addons[1]", "plan 'p1' has no addon 'ipp' (did you mean 'ip'?")],
    ),
    (
        [("subscriptions[0].active_from", FIRST_TIME), ("subscriptions[0].active_to", FIRST_TIME)],
        [("subscriptions[0].active_to", "later than active_from")],
    ),
    # vouchers
    ([("vouchers[0].amount", "0")], [("vouchers[0].amount", "must be more than zero")]),
    ([("vouchers[0].wallet", "ghost")], [("vouchers[0].wallet", "unknown wallet 'ghost'")]),
    ([("vouchers[0].grant_days", 0)], [("vouchers[0].grant_days", "at least 1")]),
    ([("vouchers[0].valid_until", "tomorrow")], [("vouchers[0].valid_until", "RFC 3339")]),
]


@pytest.mark.parametrize(("changes", "expected"), CASES, ids=map(case_id, CASES))
def test_one_mistake_gives_exactly_its_issues(
    write: Write, base: Data, changes: Changes, expected: Expected
) -> None:
    assert_issues(write, base, changes, expected)


def test_the_base_catalog_is_valid(write: Write, base: Data) -> None:
    catalog = load_catalog(write(base))
    assert list(catalog.subscriptions) == ["894410000000000001"]


def test_defaults_fill_what_the_file_leaves_out(write: Write, base: Data) -> None:
    catalog = load_catalog(write(base))

    version = catalog.plans["p1"].versions[0]
    assert version.rounding == {
        "data": Rounding(1024, 1024, 0),
        "voice": Rounding(60, 60, 0),
        "sms": Rounding(1, 1, 0),
        "event": Rounding(1, 1, 0),
    }
    assert (version.mrc, version.restart_fee, version.filters) == (0, 0, ())
    assert catalog.dedup_window == 30 * 86400
    wallet = catalog.wallets["w1"]
    assert (wallet.name, wallet.overdraft_limit, wallet.suspend_at, wallet.resume_at) == (
        "w1",
        0,
        0,
        0,
    )
    assert catalog.vouchers["V1"].priority == 20
    assert catalog.pools["pool1"].service == "data"
    assert catalog.subscriptions["894410000000000001"].active_from == 0


# -- check_subscription on its own: ids that exist, and still do not fit ---------------


def test_a_subscription_whose_parts_do_not_fit_gets_one_issue_each(
    write: Write, base: Data
) -> None:
    loaded = load_catalog(write(base))
    plan, pool = loaded.plans["p1"], loaded.pools["pool1"]
    ctx = Ctx(Source("catalog.yaml", None))
    f = ctx.mapping("subscriptions[0]", {"plan": "p1", "pool": "pool1"}, ("plan", "pool"))
    assert f is not None
    usd = Wallet(id="w2", name="w2", currency="USD")
    sms_pool = msgspec.structs.replace(pool, service="sms")
    addons = [("subscriptions[0].addons[0]", "pi")]
    check_subscription(ctx, f, "w2", usd, plan, sms_pool, addons)
    assert [(i.path, i.message) for i in ctx.issues] == [
        ("subscriptions[0].plan", "plan 'p1' version 1 is in EUR, but wallet 'w2' is in USD"),
        ("subscriptions[0].pool", "pool 'pool1' belongs to wallet 'w1', not to 'w2'"),
        ("subscriptions[0].pool", "pool 'pool1' covers sms, which plan 'p1' has no rates for"),
        ("subscriptions[0].addons[0]", "plan 'p1' has no addon 'pi' (known: ip)"),
    ]


def test_a_subscription_that_fits_has_no_issue(write: Write, base: Data) -> None:
    loaded = load_catalog(write(base))
    ctx = Ctx(Source("catalog.yaml", None))
    f = ctx.mapping("subscriptions[0]", {}, ())
    assert f is not None
    wallet, plan, pool = loaded.wallets["w1"], loaded.plans["p1"], loaded.pools["pool1"]
    check_subscription(ctx, f, "w1", wallet, plan, pool, [("addons[0]", "ip")])
    assert ctx.issues == []
