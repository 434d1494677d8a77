"""``rating-engine query`` is read-only unless ``--write``: every abuse seen in the wild is
refused with a message and a non-zero exit, and the projections are unchanged after it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.clickhouse import everything

from engine.cli import main
from engine.projections.clickhouse import ProjectionError, connect
from engine.projections.readonly import READ_ONLY, check_read_only

from .conftest import CATALOG, REPO, Run

pytestmark = pytest.mark.chaos


@pytest.fixture
def projected(capsys: pytest.CaptureFixture[str], run: Run, clickhouse_url: str) -> str:
    args = ["rebuild", "--store", run.store_url, "--clickhouse", clickhouse_url]
    assert main([*args, "--catalog", str(CATALOG), "--no-progress"]) == 0
    capsys.readouterr()
    return clickhouse_url


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    client = connect(url)
    try:
        return everything(client)
    finally:
        client.close()


ABUSES = [
    ("ALTER TABLE usage_facts DELETE WHERE 1", "ALTER is not a read"),
    ("TRUNCATE TABLE balance_changes", "TRUNCATE is not a read"),
    ("DROP DATABASE {db}", "DROP is not a read"),
    ("DROP TABLE revenue_lines", "DROP is not a read"),
    ("INSERT INTO suspensions SELECT * FROM suspensions", "INSERT is not a read"),
    ("SYSTEM DROP MARK CACHE", "SYSTEM is not a read"),
    ("SELECT * FROM file('/etc/hostname', 'LineAsString')", "file() refused"),
    ("SELECT file('/etc/hostname') AS secret", "file() refused"),
    ("select * from `FILE`('/etc/hostname', 'LineAsString')", "FILE() refused"),
    ("INSERT INTO FUNCTION file('{tmp}/leak.csv', 'CSV') SELECT 1", "INSERT is not a read"),
    ("SELECT wallet FROM wallet_balances INTO OUTFILE '{tmp}/leak.txt'", "OUTFILE"),
    ("SELECT * FROM url('http://10.255.255.1/x', 'CSV', 'a String')", "url() refused"),
    ("SELECT * FROM remote('127.0.0.1', system.one)", "remote() refused"),
    ("SELECT * FROM s3('http://127.0.0.1:1/b/k.csv')", "s3() refused"),
    ("SELECT * FROM executable('cat /etc/hostname', 'LineAsString', 'x String')", "refused"),
    ("SELECT * FROM input('x String')", "input() refused"),
    ("SELECT 1; DROP TABLE usage_facts", "one statement at a time"),
    ("SELECT 1 -- harmless\n; TRUNCATE TABLE usage_facts", "one statement at a time"),
    ("/* a read */ TRUNCATE TABLE usage_facts", "TRUNCATE is not a read"),
    ("SELECT count() FROM usage_facts /* hides what follows", "unterminated"),
]


@pytest.mark.parametrize(("sql", "message"), ABUSES)
def test_abuse_is_refused_and_the_data_is_unchanged(
    capsys: pytest.CaptureFixture[str], projected: str, tmp_path: Path, sql: str, message: str
) -> None:
    before = snapshot(projected)
    filled = sql.format(db=projected.rsplit("=", 1)[1], tmp=tmp_path)
    assert main(["query", filled, "--clickhouse", projected]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("rating-engine: ")
    assert message in captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""
    assert list(tmp_path.iterdir()) == []
    assert snapshot(projected) == before


@pytest.mark.parametrize(
    "sql",
    [
        "TRUNCATE TABLE balance_changes",
        "ALTER TABLE usage_facts DELETE WHERE 1",
        "DROP TABLE revenue_lines",
        "SELECT * FROM file('/etc/hostname', 'LineAsString')",
        "SELECT count() FROM usage_facts SETTINGS readonly = 0",
    ],
)
def test_the_server_refuses_writes_even_past_the_parse_check(projected: str, sql: str) -> None:
    """The second layer: ClickHouse's readonly=1, as run_query sends it."""
    before = snapshot(projected)
    client = connect(projected)
    try:
        with pytest.raises(Exception, match="readonly"):
            client.query(sql, settings=READ_ONLY)
    finally:
        client.close()
    assert snapshot(projected) == before


def test_reads_still_answer(capsys: pytest.CaptureFixture[str], projected: str, run: Run) -> None:
    sql = "WITH 'file(' AS s SELECT count() AS n, any(s) AS t FROM wallet_balances -- url("
    assert main(["query", sql, "--clickhouse", projected, "--json"]) == 0
    assert f'"n":{len(run.summary.wallets)}' in capsys.readouterr().out
    for sql in ("SHOW TABLES", "DESCRIBE TABLE usage_facts", "EXPLAIN SELECT 1", "SELECT 1;"):
        assert main(["query", sql, "--clickhouse", projected]) == 0, sql
    capsys.readouterr()


def test_writes_need_the_flag(capsys: pytest.CaptureFixture[str], projected: str) -> None:
    create = "CREATE TABLE analyst_notes (note String) ENGINE = MergeTree ORDER BY note"
    assert main(["query", create, "--clickhouse", projected]) == 1
    assert "use --write" in capsys.readouterr().err
    assert main(["query", create, "--clickhouse", projected, "--write"]) == 0
    insert = "INSERT INTO analyst_notes SELECT 'checked'"
    assert main(["query", insert, "--clickhouse", projected, "--write"]) == 0
    capsys.readouterr()
    assert main(["query", "SELECT note FROM analyst_notes", "--clickhouse", projected]) == 0
    assert "checked" in capsys.readouterr().out


def _own_session(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """A child in a session and process group of its own: a SYSTEM SHUTDOWN that got
    through would signal that group, never pytest's."""
    return subprocess.run(
        argv, cwd=REPO, capture_output=True, text=True, timeout=120, start_new_session=True
    )


def test_system_shutdown_is_refused_in_a_child_process(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'ch'}"
    done = _own_session(
        [sys.executable, "-m", "engine.cli", "query", "SYSTEM SHUTDOWN", "--clickhouse", url]
    )
    assert done.returncode == 1, done.stderr
    assert "SYSTEM is not a read" in done.stderr
    assert "Traceback" not in done.stderr
    # The server layer alone, past the parse check, refuses it too.
    script = textwrap.dedent(
        f"""
        from engine.projections.clickhouse import connect
        from engine.projections.readonly import READ_ONLY
        client = connect({url!r})
        try:
            client.query("SYSTEM SHUTDOWN", settings=READ_ONLY)
        except Exception as exc:
            print("refused:", exc)
        else:
            print("ran")
        """
    )
    done = _own_session([sys.executable, "-c", script])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("refused:")
    assert "READONLY" in done.stdout


names = st.sampled_from(
    ["file", "url", "remote", "s3", "input", "executable", "system", "URL", "s3Cluster"]
)


@given(name=names, spaces=st.sampled_from(["", " ", "\n", " /* x */ "]))
def test_an_outside_call_is_refused_however_spaced(name: str, spaces: str) -> None:
    with pytest.raises(ProjectionError, match="refused"):
        check_read_only(f"SELECT * FROM {name}{spaces}('x')")


@given(text=st.text(alphabet=st.characters(blacklist_characters="'\\"), max_size=40))
def test_strings_and_comments_are_never_read_as_code(text: str) -> None:
    line = text.replace("\n", " ")
    check_read_only(f"SELECT '{text}' AS a, 1 /* {text.replace('*/', '')} */ -- {line}")
