"""Revenue splits as written: shares in the order given, each of a known provider, summing
to exactly 100%."""

from __future__ import annotations

from engine.catalog import load_catalog
from engine.catalog.reader import Ctx
from engine.catalog.splits import read_split, split_field
from engine.catalog.values import WHOLE
from engine.catalog.yaml_source import Source
from engine.domain.catalog import Share
from engine.domain.draft import splits

from .conftest import EXAMPLE


def ctx() -> Ctx:
    c = Ctx(Source("catalog.yaml", None))
    for provider in ("op", "platform"):
        c.declare("provider", f"providers.{provider}", provider)
    return c


def test_shares_keep_the_order_written_and_sum_to_the_whole() -> None:
    c = ctx()
    shares = read_split(c, "split", {"platform": 40, "op": 60})
    assert shares == (Share("platform", WHOLE * 40 // 100), Share("op", WHOLE * 60 // 100))
    assert c.issues == []


def test_a_split_short_of_100_percent_is_refused_with_its_sum() -> None:
    c = ctx()
    assert read_split(c, "split", {"op": 60, "platform": 30}) is None
    assert [(i.path, i.message) for i in c.issues] == [("split", "shares sum to 90%, not 100%")]


def test_an_unknown_provider_is_blamed_and_the_sum_is_not() -> None:
    c = ctx()
    assert read_split(c, "split", {"op": 60, "nobody": 40}) is None
    assert [i.path for i in c.issues] == ["split.nobody"]


def test_an_empty_split_is_refused() -> None:
    c = ctx()
    assert read_split(c, "split", {}) is None
    assert [i.message for i in c.issues] == ["a split needs at least one provider"]


def test_a_missing_split_is_an_issue_only_when_required() -> None:
    c = ctx()
    fields = c.mapping("plans[0]", {"id": "p1"}, ("id", "splits"))
    assert fields is not None
    assert split_field(fields, "splits", required=False) is None
    assert c.issues == []
    assert split_field(fields, "splits", required=True, why=": it pays the MRC") is None
    assert [(i.path, i.message) for i in c.issues] == [
        ("plans[0].splits", "missing required key 'splits': it pays the MRC")
    ]


def test_a_tick_splits_the_catalogs_mrcs_from_lines_worked_out_with_the_catalog() -> None:
    cat = load_catalog(EXAMPLE)
    index = cat.index
    assert index is not None
    for plan_ in cat.plans.values():
        for v in plan_.versions:
            found = index.splitters[v.mrc_splits]
            # the same tuple each time: worked out once, with the catalog
            assert splits(cat, v.mrc_splits, v.mrc) is found.fixed[v.mrc]
            for a in v.addons.values():
                assert a.mrc in index.splitters[a.splits].fixed
            if v.restart_fee:
                fees = index.splitters[v.restart_fee_splits]
                assert splits(cat, v.restart_fee_splits, v.restart_fee) is fees.fixed[v.restart_fee]
    for pool in cat.pools.values():
        fee = pool.tiers[0].price if pool.tiers else pool.price
        if fee and pool.splits:  # a pool with no fee or no split has nothing to split
            assert fee in index.splitters[pool.splits].fixed
