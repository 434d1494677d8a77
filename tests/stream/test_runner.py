"""The worker process: its data directory made, the topology built from the settings, and
Faust's worker loop run around it at the level asked for. No broker: the loop is a stand-in."""

from __future__ import annotations

import gc
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

import engine.stream.runner
from engine.catalog import load_catalog
from engine.domain import Catalog
from engine.stream.garbage import Garbage, GcPauses
from engine.stream.runner import run_worker
from engine.stream.settings import WorkerSettings
from engine.stream.topics import Topics, load_topics


@dataclass
class Loop:
    """Faust's worker, as far as run_worker uses it: made around the app, then run."""

    app: object
    loglevel: str
    quiet: bool
    ran: bool = False
    timed: bool = False
    """Whether the collector's pauses were timed while the loop ran."""

    def execute_from_commandline(self) -> None:
        self.ran = True
        self.timed = PAUSES in gc.callbacks


PAUSES = GcPauses()


class Reader:
    """The worker's kept read-back client (``recovery.InputReader``), as run_worker uses it."""

    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def test_the_loop_runs_around_the_app_built_from_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[tuple[WorkerSettings, Catalog, Topics, object]] = []
    loops: list[Loop] = []

    garbage = Garbage(PAUSES, freeze=True, threshold=None)
    reader = Reader()
    topology = SimpleNamespace(
        vitals=SimpleNamespace(garbage=garbage), ownership=SimpleNamespace(input_reader=reader)
    )

    def build(
        settings: WorkerSettings, rules: Catalog, topics: Topics, revisions: object = None
    ) -> tuple[str, SimpleNamespace]:
        built.append((settings, rules, topics, revisions))
        return "the app", topology

    def worker(app: object, loglevel: str, quiet: bool) -> Loop:
        loops.append(Loop(app, loglevel, quiet))
        return loops[-1]

    monkeypatch.setattr(engine.stream.runner, "build", build)
    monkeypatch.setattr(engine.stream.runner, "QuietWorker", worker)
    settings = WorkerSettings(catalog=tmp_path / "c.yaml", data_dir=tmp_path / "a" / "b")
    rules = load_catalog(Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml")
    topics = load_topics()

    revisions = {1: rules}  # what the worker command passes: the live CatalogRevisions
    assert run_worker(settings, rules, topics, loglevel="info", revisions=revisions) == 0
    assert settings.data_dir.is_dir()
    assert built == [(settings, rules, topics, revisions)]
    [loop] = loops
    assert (loop.app, loop.loglevel, loop.quiet, loop.ran) == ("the app", "INFO", True, True)
    # The collector is timed while the worker's loop runs, and no longer once it stopped.
    assert loop.timed and not garbage.started and PAUSES not in gc.callbacks
    # Its read-back client is closed once the loop has stopped.
    assert reader.closed == 1
