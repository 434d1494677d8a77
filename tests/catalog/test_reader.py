"""The error-collecting reader: every mistake is recorded with its path and line, and the
reading carries on."""

from __future__ import annotations

from engine.catalog.reader import Ctx
from engine.catalog.values import ident
from engine.catalog.yaml_source import Source


def ctx(
    lines: dict[str, int] | None = None, duplicates: list[tuple[str, int]] | None = None
) -> Ctx:
    return Ctx(Source("catalog.yaml", None, lines or {}, duplicates or []))


def messages(c: Ctx) -> list[tuple[str, int | None, str]]:
    return [(i.path, i.line, i.message) for i in c.issues]


def test_a_key_written_twice_is_an_issue_from_the_start() -> None:
    c = ctx(duplicates=[("zones[0].id", 7)])
    assert messages(c) == [
        ("zones[0].id", 7, "key written twice in the same mapping (YAML keeps the last)")
    ]


def test_a_missing_key_is_blamed_on_the_line_of_its_nearest_written_parent() -> None:
    c = ctx({"plans": 3, "plans[0]": 4, "plans[0].versions": 6})
    assert c.line_of("plans[0].versions[2].rates") == 6
    assert c.line_of("plans[0].id") == 4
    assert c.line_of("zones") is None


def test_unknown_keys_are_each_reported_and_the_mapping_is_still_read() -> None:
    c = ctx()
    fields = c.mapping("wallets[0]", {"id": "w1", "curency": "EUR"}, ("id", "currency"))
    assert fields is not None and fields.req("id", ident) == "w1"
    [(path, _, message)] = messages(c)
    assert path == "wallets[0].curency"
    assert message.startswith("unknown key 'curency'") and "currency" in message


def test_what_is_not_a_mapping_or_a_list_is_reported_and_read_as_nothing() -> None:
    c = ctx()
    assert c.mapping("zones[0]", "EU", ("id",)) is None
    assert c.items("zones", {"id": "EU"}) == []
    assert c.items("zones", None) == []  # a missing list is an empty one, not a mistake
    assert [path for path, _, _ in messages(c)] == ["zones[0]", "zones"]


def test_a_required_key_missing_and_a_bad_optional_one_fall_back() -> None:
    c = ctx()
    fields = c.mapping("wallets[0]", {"id": "not an id!", "days": None}, ("id", "days"))
    assert fields is not None
    assert fields.req("currency", ident) is None
    assert fields.opt("id", ident, "fallback") == "fallback"
    assert fields.opt("days", ident, "default") == "default"  # null: absent, no issue
    assert [path for path, _, _ in messages(c)] == ["wallets[0].currency", "wallets[0].id"]


def test_an_id_is_declared_once_and_referred_to_only_after() -> None:
    c = ctx()
    assert c.refer("subscriptions[0].wallet", "wallet", "w1") is False
    assert c.declare("wallet", "wallets[0].id", "w1") is True
    assert c.declare("wallet", "wallets[1].id", "w1") is False
    assert c.refer("subscriptions[1].wallet", "wallet", "w1") is True
    assert [m for _, _, m in messages(c)] == [
        "unknown wallet 'w1' (none are defined)",
        "duplicate wallet 'w1' (first at wallets[0].id)",
    ]
