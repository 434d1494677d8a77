"""Reading back every projection, for tests that compare two projected databases."""

from __future__ import annotations

from typing import Any

from engine.projections.clickhouse import Client
from engine.projections.schema import TABLES, VIEWS


def everything(client: Client) -> dict[str, list[tuple[Any, ...]]]:
    """Every table and view, rows sorted (duplicates before FINAL folded by FINAL)."""
    out = {}
    for name in TABLES:
        final = " FINAL" if "ReplacingMergeTree" in TABLES[name] else ""
        out[name] = sorted(client.query(f"SELECT * FROM {name}{final}").result_rows, key=repr)
    for name in VIEWS:
        out[name] = sorted(client.query(f"SELECT * FROM {name}").result_rows, key=repr)
    return out
