"""Running an analyst's SQL and laying the answer out as an aligned table."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import msgspec
from clickhouse_connect.driver.exceptions import ClickHouseError

from .clickhouse import Client, ProjectionError
from .readonly import READ_ONLY, check_read_only


class Answer(msgspec.Struct, frozen=True):
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def run_query(client: Client, sql: str, write: bool = False) -> Answer:
    """The result of one statement; a ClickHouse error becomes a ``ProjectionError``.
    Unless ``write``, the statement must be a read (``readonly.check_read_only``) and runs
    under ClickHouse's ``readonly=1``."""
    if not write:
        check_read_only(sql)
    try:
        result = client.query(sql, settings=None if write else READ_ONLY)
    except ClickHouseError as exc:
        raise ProjectionError(_first_line(str(exc))) from None
    return Answer(tuple(result.column_names), [tuple(r) for r in result.result_rows])


def _first_line(message: str) -> str:
    # clickhouse-connect appends the statement and a version trailer; the cause comes first.
    text = message.strip().splitlines()[0] if message.strip() else "query failed"
    return text.split(" (version ", 1)[0]


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | Decimal):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_cell(v) for v in value) + "]"
    return str(value)


def render_table(answer: Answer) -> str:
    """Columns aligned, numbers to the right; the row count last."""
    cells = [[_cell(v) for v in row] for row in answer.rows]
    numeric = [
        all(isinstance(row[i], int | float | Decimal) for row in answer.rows) and bool(answer.rows)
        for i in range(len(answer.columns))
    ]
    widths = [
        max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(answer.columns)
    ]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, numeric, strict=True)
        ).rstrip()

    out = [line(list(answer.columns)), line(["-" * w for w in widths])]
    out += [line(row) for row in cells]
    out.append(f"({len(answer.rows):,} row{'s' if len(answer.rows) != 1 else ''})")
    return "\n".join(out)
