"""Each table's DDL, column lists and mapping come from its one list of column specs."""

from __future__ import annotations

import re

import pytest

from engine.domain import Catalog
from engine.projections.rows import catalog_rows
from engine.projections.tables import (
    CATALOG,
    CATALOG_COLUMNS,
    COLUMNS,
    FACTS,
    MAPPINGS,
    STATE,
    TABLES,
    Table,
)


@pytest.mark.parametrize("table", [*FACTS, *CATALOG, STATE], ids=lambda t: t.name)
def test_the_ddl_declares_the_specs_columns_in_order(table: Table) -> None:
    ddl = TABLES[table.name]
    declared = re.findall(r"^\s+(\w+) ", ddl, flags=re.M)
    assert declared == [c.name for c in table.columns]
    assert f"ENGINE = {table.engine} ORDER BY {table.order_by}" in ddl


@pytest.mark.parametrize("table", FACTS, ids=lambda t: t.name)
def test_a_mapping_fills_every_column_but_the_computed_ones(table: Table) -> None:
    mapping = MAPPINGS[f"{table.name}_mapping"]
    computed = [c.name for c in table.columns if c.fill is None]
    assert all(c.default for c in table.columns if c.fill is None), computed
    assert COLUMNS[table.name] == tuple(c.name for c in table.columns if c.fill is not None)
    for name in COLUMNS[table.name]:
        assert re.search(rf"\b{name}\b", mapping), name
    assert f"TO {table.name} AS" in mapping


def test_catalog_rows_have_the_catalog_tables_columns(catalog: Catalog) -> None:
    rows = catalog_rows(catalog)
    assert set(rows) == set(CATALOG_COLUMNS) - {"pool_allowances"}
    for table, found in rows.items():
        assert found
        assert {len(r) for r in found} == {len(CATALOG_COLUMNS[table])}, table
