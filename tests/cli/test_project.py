"""``rating-engine project`` and ``rebuild``: the store folded into ClickHouse from where it
stopped, or from scratch; the connection closed whatever happens."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from engine.cli import project
from engine.store import EventStore

from .parsing import parse, run


@dataclass
class FakeClient:
    closed: bool = False

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeProjector:
    fail: bool = False
    client: FakeClient = field(default_factory=FakeClient)
    calls: list[tuple[str, object]] = field(default_factory=list)

    def project(self, store: EventStore, progress: object = None) -> int:
        self.calls.append(("project", None))
        if self.fail:
            raise RuntimeError("ClickHouse went away")
        return 3

    def rebuild(self, store: EventStore, progress: object = None, direct: object = None) -> int:
        self.calls.append(("rebuild", direct))
        return 5

    def counts(self) -> dict[str, int]:
        return {"usage": 1200, "charges": 3}

    def position(self) -> int:
        return 1234


@pytest.fixture
def target(monkeypatch: pytest.MonkeyPatch) -> FakeProjector:
    fake = FakeProjector()
    monkeypatch.setattr(project, "projector", lambda url, catalog: fake)
    return fake


def argv(name: str, tmp_path: Path, *more: str) -> list[str]:
    store = f"sqlite:///{tmp_path / 'events.db'}"
    return [name, "--store", store, "--clickhouse", "chdb:///x", "--no-progress", *more]


def test_project_applies_what_is_new_and_reports_rows(
    target: FakeProjector, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(project, *argv("project", tmp_path)) == 0
    assert target.calls == [("project", None)] and target.client.closed
    assert capsys.readouterr().out.splitlines() == [
        "3 events applied; projected up to store position 1,234",
        "rows: usage 1,200, charges 3",
    ]


def test_rebuild_passes_direct_as_given(target: FakeProjector, tmp_path: Path) -> None:
    run(project, *argv("rebuild", tmp_path))
    run(project, *argv("rebuild", tmp_path, "--no-direct"))
    assert target.calls == [("rebuild", None), ("rebuild", False)]


def test_a_failed_fold_still_closes_the_connection(target: FakeProjector, tmp_path: Path) -> None:
    target.fail = True
    with pytest.raises(RuntimeError):
        run(project, *argv("project", tmp_path))
    assert target.client.closed


def test_only_rebuild_has_direct(tmp_path: Path) -> None:
    assert not hasattr(parse(project, *argv("project", tmp_path)), "direct")
    with pytest.raises(SystemExit):
        parse(project, *argv("project", tmp_path, "--direct"))
