"""How a projection table is described once, and its DDL and mapping generated from that.

A ``Table`` is a list of ``Column`` specs. ``ddl`` writes its ``CREATE TABLE``; for a fact
table, ``mapping`` writes the materialized view that fills it from ``event_intake``. The
tables themselves are in ``tables.py``.
"""

from __future__ import annotations

from typing import NamedTuple

from .intake import INTAKE, types


class Column(NamedTuple):
    """A column, defined once: its DDL, and for a fact table how an event fills it."""

    name: str
    type: str
    fill: str | None = None
    """SQL over ``event_intake`` that fills it (fact tables); None: not filled by a mapping
    (a catalog column, or one ClickHouse computes: ``default``)."""
    default: str = ""
    note: str = ""


class Table(NamedTuple):
    """A table: its DDL and, for a fact table, its mapping are generated from ``columns``."""

    name: str
    columns: tuple[Column, ...]
    order_by: str
    engine: str = "ReplacingMergeTree"
    events: tuple[type, ...] = ()
    """The events a fact table's mapping reads; empty for the other tables."""
    source: str = ""
    """SQL after ``FROM event_intake`` (an ``ARRAY JOIN``, a ``WHERE``): default, rows of
    ``events`` only."""


def ddl(table: Table) -> str:
    """``CREATE TABLE IF NOT EXISTS`` of ``table``, each column with its note."""
    width = max(len(c.name) for c in table.columns)
    lines = []
    for n, c in enumerate(table.columns):
        line = f"    {c.name.ljust(width)} {c.type}"
        if c.default:
            line += f" DEFAULT {c.default}"
        if n < len(table.columns) - 1:
            line += ","
        if c.note:
            line += f"  -- {c.note}"
        lines.append(line)
    return (
        f"CREATE TABLE IF NOT EXISTS {table.name} (\n"
        + "\n".join(lines)
        + f"\n) ENGINE = {table.engine} ORDER BY {table.order_by}"
    )


def mapping(table: Table) -> str:
    """The materialized view that turns each block inserted into the intake into ``table``'s
    rows (``day`` and other defaults are left to ClickHouse)."""
    select = ",\n            ".join(
        c.name if c.fill == c.name else f"{c.fill} AS {c.name}"
        for c in table.columns
        if c.fill is not None
    )
    rest = (table.source or "WHERE {events}").replace("{events}", types(*table.events))
    return (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {table.name}_mapping TO {table.name} AS\n"
        f"        SELECT {select}\n        FROM {INTAKE}\n        {rest}"
    )
