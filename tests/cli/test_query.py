"""``rating-engine query``: one statement, printed as a table or JSON rows; the connection
closed whatever happens."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

import engine.projections.clickhouse
from engine.cli import query
from engine.projections.clickhouse import ProjectionError

from .parsing import parse, run


@dataclass
class Result:
    column_names: tuple[str, ...] = ("wallet", "n")
    result_rows: list[list[Any]] = field(default_factory=lambda: [["w1", 2]])


@dataclass
class FakeClient:
    url: str
    closed: bool = False
    settings: list[object] = field(default_factory=list)

    def query(self, sql: str, settings: object = None) -> Result:
        self.settings.append(settings)
        return Result()

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> list[FakeClient]:
    opened: list[FakeClient] = []

    def connect(url: str) -> FakeClient:
        opened.append(FakeClient(url))
        return opened[-1]

    monkeypatch.setattr(engine.projections.clickhouse, "connect", connect)
    return opened


def test_rows_as_json(clients: list[FakeClient], capsys: pytest.CaptureFixture[str]) -> None:
    code = run(query, "query", "SELECT wallet, n FROM t", "--clickhouse", "chdb:///x", "--json")
    assert code == 0
    assert json.loads(capsys.readouterr().out) == [{"wallet": "w1", "n": 2}]
    [client] = clients
    assert client.url == "chdb:///x" and client.closed


def test_a_refused_statement_still_closes_the_connection(clients: list[FakeClient]) -> None:
    with pytest.raises(ProjectionError):
        run(query, "query", "DROP TABLE t", "--clickhouse", "chdb:///x")
    [client] = clients
    assert client.closed and client.settings == []


def test_read_only_unless_write_is_given() -> None:
    assert parse(query, "query", "SELECT 1", "--clickhouse", "chdb:///x").write is False
    assert parse(query, "query", "SELECT 1", "--clickhouse", "chdb:///x", "--write").write
