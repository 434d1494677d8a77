"""A table described once as columns: its ``CREATE TABLE`` and, for a fact table, the view
that fills it from the intake, both generated from that one description."""

from __future__ import annotations

from engine.domain.events import Charged, UsageRated
from engine.projections.columns import Column, Table, ddl, mapping
from engine.projections.intake import INTAKE, types

TABLE = Table(
    "usage",
    (
        Column("id", "String", "id"),
        Column("amount", "Int64", "toInt64(amount)", note="micro-units"),
        Column("day", "Date", default="toDate(at)"),
    ),
    order_by="id",
    events=(UsageRated, Charged),
)


def test_the_ddl_aligns_the_columns_with_their_defaults_and_notes() -> None:
    assert ddl(TABLE) == (
        "CREATE TABLE IF NOT EXISTS usage (\n"
        "    id     String,\n"
        "    amount Int64,  -- micro-units\n"
        "    day    Date DEFAULT toDate(at)\n"
        ") ENGINE = ReplacingMergeTree ORDER BY id"
    )


def test_the_mapping_fills_only_the_filled_columns_from_the_tables_events() -> None:
    assert mapping(TABLE) == (
        "CREATE MATERIALIZED VIEW IF NOT EXISTS usage_mapping TO usage AS\n"
        "        SELECT id,\n"
        "            toInt64(amount) AS amount\n"
        f"        FROM {INTAKE}\n"
        f"        WHERE {types(UsageRated, Charged)}"
    )


def test_a_source_of_its_own_still_names_the_events() -> None:
    lines = Table(
        "lines", TABLE.columns[:1], "id", events=(Charged,), source="ARRAY JOIN x WHERE {events}"
    )
    assert mapping(lines).endswith(f"ARRAY JOIN x WHERE {types(Charged)}")
