"""An analyst's SQL: read-only unless asked, ClickHouse's error said in one line, and the
answer laid out as an aligned table."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from engine.projections.clickhouse import Client, ProjectionError
from engine.projections.query import Answer, render_table, run_query


@dataclass
class Result:
    column_names: tuple[str, ...]
    result_rows: list[list[Any]]


@dataclass
class FakeClient:
    """Answers every statement with ``result`` (or raises ``error``), noting its settings."""

    result: Result = field(default_factory=lambda: Result(("n",), [[1]]))
    error: Exception | None = None
    asked: list[tuple[str, object]] = field(default_factory=list)

    def query(self, sql: str, settings: object = None) -> Result:
        self.asked.append((sql, settings))
        if self.error is not None:
            raise self.error
        return self.result


def test_a_read_runs_under_readonly_and_its_rows_become_records() -> None:
    fake = FakeClient(Result(("wallet", "n"), [["w1", 2], ["w2", 3]]))
    answer = run_query(cast(Client, fake), "SELECT wallet, n FROM t")
    assert answer.records() == [{"wallet": "w1", "n": 2}, {"wallet": "w2", "n": 3}]
    [(_, settings)] = fake.asked
    assert settings is not None  # ClickHouse's readonly=1 too, not the check alone


def test_a_write_is_refused_before_clickhouse_sees_it_unless_allowed() -> None:
    fake = FakeClient()
    with pytest.raises(ProjectionError):
        run_query(cast(Client, fake), "DROP TABLE usage")
    assert fake.asked == []
    run_query(cast(Client, fake), "DROP TABLE usage", write=True)
    assert fake.asked == [("DROP TABLE usage", None)]


def test_clickhouses_error_is_its_first_line_without_the_trailer() -> None:
    error = DatabaseError("Code: 60. Unknown table t (version 24.1)\nSELECT * FROM t")
    with pytest.raises(ProjectionError) as caught:
        run_query(cast(Client, FakeClient(error=error)), "SELECT * FROM t")
    assert str(caught.value) == "Code: 60. Unknown table t"


def test_numbers_align_right_text_left_and_the_rows_are_counted() -> None:
    answer = Answer(
        ("wallet", "amount", "at"),
        [("w1", Decimal("1.50"), datetime(2026, 1, 1)), ("wallet-2", Decimal("10.00"), None)],
    )
    assert render_table(answer).splitlines() == [
        "wallet    amount  at",
        "--------  ------  -------------------",
        "w1          1.50  2026-01-01 00:00:00",
        "wallet-2   10.00  NULL",
        "(2 rows)",
    ]


def test_an_empty_answer_has_its_header_and_no_rows() -> None:
    assert render_table(Answer(("n",), [])).splitlines() == ["n", "-", "(0 rows)"]
    assert render_table(Answer(("xs",), [([1, 2],)])).splitlines()[-2:] == ["[1, 2]", "(1 row)"]
