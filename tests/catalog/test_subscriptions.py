"""The ``subscriptions`` section: one SIM or a range of ICCIDs per entry, each ICCID listed
once."""

from __future__ import annotations

from engine.catalog.reader import Ctx
from engine.catalog.subscriptions import read_subscriptions
from engine.catalog.yaml_source import Source
from engine.domain.catalog import Subscription, Wallet


def ctx() -> Ctx:
    c = Ctx(Source("catalog.yaml", None))
    c.declare("wallet", "wallets[0].id", "w1")
    c.declare("plan", "plans[0].id", "p1")
    return c


WALLETS = {"w1": Wallet(id="w1", name="w1", currency="EUR")}


def read(c: Ctx, entries: list[dict[str, object]]) -> dict[str, Subscription]:
    return read_subscriptions(c, entries, WALLETS, {}, {})


def test_a_range_is_one_sim_each_with_its_leading_zeros() -> None:
    c = ctx()
    subs = read(
        c, [{"iccids": {"first": "0894410000000000098", "count": 3}, "wallet": "w1", "plan": "p1"}]
    )
    assert list(subs) == ["0894410000000000098", "0894410000000000099", "0894410000000000100"]
    assert {(s.wallet, s.plan) for s in subs.values()} == {("w1", "p1")}
    assert c.issues == []


def test_a_range_that_would_need_another_digit_is_refused() -> None:
    c = ctx()
    assert (
        read(
            c,
            [
                {
                    "iccids": {"first": "9999999999999999998", "count": 3},
                    "wallet": "w1",
                    "plan": "p1",
                }
            ],
        )
        == {}
    )
    assert [i.path for i in c.issues] == ["subscriptions[0].iccids"]
    assert "runs past 19 digits" in c.issues[0].message


def test_an_iccid_listed_twice_keeps_its_first_entry() -> None:
    c = ctx()
    entries: list[dict[str, object]] = [
        {"iccid": "894410000000000001", "wallet": "w1", "plan": "p1"},
        {"iccids": {"first": "894410000000000000", "count": 3}, "wallet": "w1", "plan": "p1"},
    ]
    subs = read(c, entries)
    assert sorted(subs) == ["894410000000000000", "894410000000000001", "894410000000000002"]
    assert [(i.path, i.message) for i in c.issues] == [
        (
            "subscriptions[1].iccids",
            "1 ICCIDs of this range are already listed, from '894410000000000001' "
            "(first at subscriptions[0].iccid)",
        )
    ]


def test_one_sim_or_a_range_not_both() -> None:
    c = ctx()
    both = {"iccid": "894410000000000001", "iccids": {"first": "894410000000000001", "count": 1}}
    assert read(c, [{**both, "wallet": "w1", "plan": "p1"}]) == {}
    assert [i.message for i in c.issues] == [
        "give either 'iccid' (one SIM) or 'iccids' (a range), not both"
    ]


def test_an_end_before_the_start_is_refused() -> None:
    c = ctx()
    entry = {
        "iccid": "894410000000000001",
        "wallet": "w1",
        "plan": "p1",
        "active_from": "2026-02-01T00:00:00Z",
        "active_to": "2026-01-01T00:00:00Z",
    }
    read(c, [entry])
    assert [(i.path, i.message) for i in c.issues] == [
        ("subscriptions[0].active_to", "must be later than active_from")
    ]


def test_sims_one_by_one_sharing_their_fields_read_as_each_alone() -> None:
    c = ctx()
    entries: list[dict[str, object]] = [
        {"iccid": f"89441000000000000{i}", "wallet": "w1", "plan": "p1"} for i in range(3)
    ]
    entries.append({"iccid": "894410000000000001", "wallet": "w1", "plan": "p1"})  # again
    entries.append({"iccid": "12", "wallet": "w1", "plan": "p1"})  # not an ICCID
    entries.append({"iccid": "894410000000000009", "wallet": "w1", "plan": "p1", "x": 1})
    subs = read(c, entries)
    assert sorted(subs) == [f"89441000000000000{i}" for i in (0, 1, 2, 9)]
    assert subs["894410000000000002"] == Subscription("894410000000000002", "w1", "p1")
    assert [i.path for i in c.issues] == [
        "subscriptions[3].iccid",
        "subscriptions[4].iccid",
        "subscriptions[5].x",
    ]
    assert c.issues[0].message == (
        "duplicate ICCID '894410000000000001' (first at subscriptions[1].iccid)"
    )


def test_each_sim_with_a_bad_field_is_reported_though_others_share_it() -> None:
    c = ctx()
    entries: list[dict[str, object]] = [
        {"iccid": f"89441000000000000{i}", "wallet": "w9", "plan": "p1"} for i in range(2)
    ]
    assert read(c, entries) == {}
    assert [i.path for i in c.issues] == ["subscriptions[0].wallet", "subscriptions[1].wallet"]
