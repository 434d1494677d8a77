"""The analytics guide's SQL runs against a projected run; the CLI query / project / rebuild."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from engine.cli import main

from .conftest import CATALOG, REPO, Run

GUIDE = REPO / "docs" / "analytics.md"


def sql_blocks() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL)


@pytest.fixture
def rebuilt(capsys: pytest.CaptureFixture[str], run: Run, clickhouse_url: str) -> str:
    args = ["rebuild", "--store", run.store_url, "--clickhouse", clickhouse_url]
    assert main([*args, "--catalog", str(CATALOG), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"{len(run.events):,} events applied" in out
    return clickhouse_url


def test_every_sql_block_of_the_guide_answers(
    capsys: pytest.CaptureFixture[str], rebuilt: str
) -> None:
    blocks = sql_blocks()
    assert len(blocks) >= 10
    for sql in blocks:
        assert main(["query", sql, "--clickhouse", rebuilt, "--json"]) == 0, sql
        rows = msgspec.json.decode(capsys.readouterr().out)
        assert rows, f"no rows for:\n{sql}"


def test_query_prints_an_aligned_table_and_json(
    capsys: pytest.CaptureFixture[str], rebuilt: str, run: Run
) -> None:
    sql = "SELECT wallet, balance FROM wallet_balances ORDER BY wallet"
    assert main(["query", sql, "--clickhouse", rebuilt]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["wallet", "balance"]
    assert set(lines[1]) <= {"-", " "}
    width = len(lines[1])
    body = lines[2:-1]
    assert all(len(line) == width for line in body)
    assert lines[-1] == f"({len(body)} rows)"
    assert main(["query", sql, "--clickhouse", rebuilt, "--json"]) == 0
    rows = msgspec.json.decode(capsys.readouterr().out)
    expected = {w.wallet_id: w.balance for w in run.summary.wallets}
    assert {r["wallet"]: r["balance"] for r in rows} == expected
    assert [line.split()[0] for line in body] == [r["wallet"] for r in rows]


def test_project_is_incremental(capsys: pytest.CaptureFixture[str], rebuilt: str, run: Run) -> None:
    assert main(["project", "--store", run.store_url, "--clickhouse", rebuilt]) == 0
    assert capsys.readouterr().out.startswith("0 events applied")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["query", "SELECT 1 +", "--clickhouse", "{url}"], "Syntax error"),
        (["query", "SELECT * FROM no_such_table", "--clickhouse", "{url}"], "no_such_table"),
        (["query", "SELECT 1", "--clickhouse", "mysql://h/db"], "ClickHouse URL"),
        (["project", "--store", "{store}", "--clickhouse", "ftp://x"], "ClickHouse URL"),
    ],
)
def test_errors_are_messages_not_tracebacks(
    capsys: pytest.CaptureFixture[str],
    clickhouse_url: str,
    run: Run,
    args: list[str],
    message: str,
) -> None:
    filled = [a.format(url=clickhouse_url, store=run.store_url) for a in args]
    assert main(filled) == 1
    err = capsys.readouterr().err
    assert err.startswith("rating-engine: ")
    assert message in err
    assert "Traceback" not in err


def test_guide_names_only_existing_tables() -> None:
    from engine.projections.schema import TABLES, VIEWS

    text = GUIDE.read_text()
    for name in re.findall(r"FROM (\w+)", text):
        assert name in TABLES or name in VIEWS, name
    assert Path(GUIDE).exists()
