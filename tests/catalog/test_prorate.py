"""``prorate`` on plan versions and pools: read, defaulted, and checked with file, path and
problem like every other option."""

from __future__ import annotations

import pytest

from engine.catalog.prorate import PLAN_KINDS, prorate
from engine.catalog.reader import Ctx, Fields
from engine.catalog.yaml_source import Source

from .conftest import Case, Data, Write, assert_issues, case_id, change, load

V = "plans[0].versions[0]"
P = "pools[0]"

CASES: list[Case] = [
    (
        [(f"{V}.prorate", {"mrc": "monthly"})],
        [(f"{V}.prorate.mrc", "unknown pro-rating 'monthly'")],
    ),
    ([(f"{V}.prorate", {"fee": "daily"})], [(f"{V}.prorate.fee", "unknown key 'fee'")]),
    ([(f"{V}.prorate", "daily")], [(f"{V}.prorate", "expected a mapping")]),
    ([(f"{P}.prorate", {"allowance": 1})], [(f"{P}.prorate.allowance", "expected a pro-rating")]),
    ([(f"{P}.prorate", {"mrc": "daily"})], [(f"{P}.prorate.mrc", "unknown key 'mrc'")]),
    (
        [
            (
                P,
                {
                    "id": "pool1",
                    "wallet": "w1",
                    "kind": "stacked",
                    "zones": ["EU"],
                    "bundles": [{"id": "b1", "size": "1GB", "valid_from": "2026-01-01T00:00:00Z"}],
                    "prorate": {"allowance": "daily"},
                },
            ),
        ],
        [(f"{P}.prorate.allowance", "'allowance' pro-rating does not apply here")],
    ),
]


@pytest.mark.parametrize(("changes", "expected"), CASES, ids=map(case_id, CASES))
def test_one_mistake_in_prorate_gives_exactly_its_issue(
    write: Write, base: Data, changes: list[tuple[str, object]], expected: list[tuple[str, str]]
) -> None:
    assert_issues(write, base, changes, expected)


def test_prorate_is_read_and_defaults_to_none(write: Write, base: Data) -> None:
    default = load(write(base))
    version = default.plans["p1"].versions[0]
    assert (version.prorate_mrc, version.prorate_addons) == ("none", "none")
    assert (default.pools["pool1"].prorate_allowance, default.pools["pool1"].prorate_fee) == (
        "none",
        "none",
    )
    change(base, f"{V}.prorate", {"mrc": "daily", "addons": "daily"})
    change(base, f"{P}.prorate", {"allowance": "daily", "fee": "daily"})
    daily = load(write(base))
    version = daily.plans["p1"].versions[0]
    assert (version.prorate_mrc, version.prorate_addons) == ("daily", "daily")
    assert (daily.pools["pool1"].prorate_allowance, daily.pools["pool1"].prorate_fee) == (
        "daily",
        "daily",
    )


# -- prorate on its own ------------------------------------------------------------------


def fields(value: object) -> tuple[Ctx, Fields]:
    ctx = Ctx(Source("catalog.yaml", None))
    f = ctx.mapping("v", {"prorate": value} if value is not None else {}, ("prorate",))
    assert f is not None
    return ctx, f


def test_each_kind_is_none_unless_given() -> None:
    ctx, f = fields(None)
    assert prorate(f, PLAN_KINDS) == {"mrc": "none", "addons": "none"}
    ctx, f = fields({"addons": "daily"})
    assert prorate(f, PLAN_KINDS) == {"mrc": "none", "addons": "daily"}
    assert ctx.issues == []


def test_a_kind_that_does_not_apply_is_named_at_its_path() -> None:
    ctx, f = fields({"mrc": "daily", "addons": "daily"})
    assert prorate(f, PLAN_KINDS, takes=("addons",)) == {"mrc": "none", "addons": "daily"}
    assert [(i.path, i.message) for i in ctx.issues] == [
        ("v.prorate.mrc", "'mrc' pro-rating does not apply here (it takes: addons)")
    ]
