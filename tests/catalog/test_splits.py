"""Revenue splits as written: shares in the order given, each of a known provider, summing
to exactly 100%."""

from __future__ import annotations

from engine.catalog.reader import Ctx
from engine.catalog.splits import read_split, split_field
from engine.catalog.values import WHOLE
from engine.catalog.yaml_source import Source
from engine.domain.catalog import Share


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
