"""``rating-engine worker``: flags over ``RATING_*`` variables, handed to the worker loop.
(The worker running: tests/stream/test_worker.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

import engine.stream.runner
from engine.cli import worker
from engine.domain import Catalog
from engine.stream.settings import WorkerSettings
from engine.stream.topics import Topics

from .parsing import run

EXAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml")


def test_flags_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[tuple[WorkerSettings, str]] = []

    def run_worker(
        settings: WorkerSettings, catalog: Catalog, topics: Topics, loglevel: str = ""
    ) -> int:
        ran.append((settings, loglevel))
        return 0

    monkeypatch.setattr(engine.stream.runner, "run_worker", run_worker)
    monkeypatch.setenv("RATING_APP_ID", "from-env")
    monkeypatch.setenv("RATING_TICK_INTERVAL", "5")
    argv = ("worker", "--catalog", EXAMPLE, "--bootstrap", "b:9092", "--tick-interval", "0")
    assert run(worker, *argv, "--loglevel", "info") == 0
    [(settings, loglevel)] = ran
    assert (settings.app_id, settings.tick_interval, settings.bootstrap) == (
        "from-env",
        0,
        "b:9092",
    )
    assert settings.catalog == Path(EXAMPLE) and loglevel == "info"
