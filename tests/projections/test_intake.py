"""The intake is tied to the ``Event`` union: every field of every event is read by a mapping
or listed as not projected, with a reason, so a new field cannot be dropped silently."""

from __future__ import annotations

import re

import msgspec

from engine.codec import RENAMED, tag
from engine.domain import EVENT_TYPES
from engine.domain.events import SimsBarred, UsageRated, WalletSuspended
from engine.projections.intake import (
    INTAKE_COLUMNS,
    UNPROJECTED_EVENTS,
    UNPROJECTED_FIELDS,
    names,
    types,
)
from engine.projections.tables import FACTS, Table

INTAKE_NAMES = {name for name, _ in INTAKE_COLUMNS}


def read_by(table: Table) -> set[str]:
    """The intake columns a fact table's mapping reads (names outside string literals)."""
    sql = " ".join([*(c.fill for c in table.columns if c.fill is not None), table.source])
    sql = re.sub(r"'[^']*'", "''", sql)
    return set(re.findall(r"[a-z_]+", sql)) & INTAKE_NAMES


def projected() -> dict[type, set[str]]:
    """Per event type, the fields some mapping reading that type reads."""
    out: dict[type, set[str]] = {}
    for table in FACTS:
        for event in table.events:
            out.setdefault(event, set()).update(read_by(table))
    return out


def fields(event: type) -> set[str]:
    return {f.name for f in msgspec.structs.fields(event)}


def test_every_event_field_is_projected_or_listed_with_a_reason() -> None:
    read = projected()
    for event in EVENT_TYPES:
        if event in UNPROJECTED_EVENTS:
            assert event not in read, f"{tag(event)} is listed as not projected but is read"
            continue
        assert event in read, f"{tag(event)}: no mapping reads it and it is not listed"
        skipped = UNPROJECTED_FIELDS.get(event, {})
        missing = fields(event) - read[event] - set(skipped)
        assert not missing, f"{tag(event)}: {sorted(missing)} neither projected nor listed"
        wrongly = set(skipped) & read[event]
        assert not wrongly, f"{tag(event)}: {sorted(wrongly)} listed as not projected but read"
        assert set(skipped) <= fields(event), f"{tag(event)}: lists fields it does not have"


def test_every_reason_is_given() -> None:
    reasons = [*UNPROJECTED_EVENTS.values()]
    reasons += [r for fs in UNPROJECTED_FIELDS.values() for r in fs.values()]
    assert all(r.strip() for r in reasons)
    assert set(UNPROJECTED_FIELDS) <= set(EVENT_TYPES) >= set(UNPROJECTED_EVENTS)


def test_every_intake_column_is_an_event_field_that_a_mapping_reads() -> None:
    every_field = {"type"} | {f for e in EVENT_TYPES for f in fields(e)}
    assert every_field >= INTAKE_NAMES
    assert set().union(*(read_by(t) for t in FACTS)) == INTAKE_NAMES


def test_mappings_name_event_types_by_their_tags_and_former_names() -> None:
    assert names(UsageRated) == ("UsageRated",)
    assert types(WalletSuspended) == "type = 'WalletSuspended'"
    old = next(o for o, n in RENAMED.items() if n == tag(SimsBarred))
    assert types(SimsBarred) == f"type IN ('SimsBarred', '{old}')"
    named: set[str] = set()
    for table in FACTS:
        sql = " ".join([*(c.fill or "" for c in table.columns), table.source])
        for one, many in re.findall(r"type (?:= '(\w+)'|IN \(([^)]*)\))", sql):
            named |= {n.strip(" '") for n in f"{one},{many}".split(",") if n.strip(" '")}
    assert named
    assert named <= {tag(e) for e in EVENT_TYPES} | set(RENAMED)
