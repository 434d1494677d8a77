"""The catalog's simple sections read on their own: ids declared once, zones that never
share a network, the dedup window's default."""

from __future__ import annotations

from engine.catalog.reader import Ctx
from engine.catalog.sections import read_providers, read_settings, read_zones
from engine.catalog.yaml_source import Source
from engine.domain.catalog import Provider, Zone
from engine.domain.cycles import DAY


def ctx() -> Ctx:
    return Ctx(Source("catalog.yaml", None))


def test_a_provider_without_a_name_is_named_by_its_id_and_declared() -> None:
    c = ctx()
    found = read_providers(c, [{"id": "op", "name": "Operator"}, {"id": "platform"}])
    assert found == {"op": Provider("op", "Operator"), "platform": Provider("platform", "platform")}
    assert set(c.declared["provider"]) == {"op", "platform"}


def test_a_second_provider_with_the_same_id_is_refused() -> None:
    c = ctx()
    found = read_providers(c, [{"id": "op", "name": "First"}, {"id": "op", "name": "Second"}])
    assert found == {"op": Provider("op", "First")}
    assert [i.path for i in c.issues] == ["providers[1].id"]


def test_one_network_belongs_to_one_zone_only() -> None:
    c = ctx()
    zones = read_zones(
        c, [{"id": "EU", "networks": ["262-01", "208-*"]}, {"id": "FR", "networks": ["208-*"]}]
    )
    # "208-*" (every network of the country) is kept as its MCC.
    assert zones["EU"] == Zone("EU", "EU", ("262-01", "208"))
    assert zones["FR"].networks == ()
    assert [(i.path, i.message) for i in c.issues] == [
        ("zones[1].networks[0]", "network '208-*' is already in zone 'EU' (zones[0].networks[1])")
    ]


def test_a_zone_needs_networks() -> None:
    c = ctx()
    read_zones(c, [{"id": "A"}, {"id": "B", "networks": []}])
    assert [(i.path, i.message) for i in c.issues] == [
        ("zones[0].networks", "missing required key 'networks'"),
        ("zones[1].networks", "a zone needs at least one network"),
    ]


def test_the_dedup_window_is_30_days_unless_set() -> None:
    assert read_settings(ctx(), None) == 30 * DAY
    assert read_settings(ctx(), {"dedup_window_days": 7}) == 7 * DAY
    c = ctx()
    assert read_settings(c, {"dedup_window_days": 0}) == 30 * DAY
    assert [i.path for i in c.issues] == ["settings.dedup_window_days"]
