"""Running the worker process: Faust's worker loop around our topology."""

from __future__ import annotations

import faust

from ..domain import Catalog
from .admin import ensure_changelog
from .agents import SNAPSHOTS, build
from .settings import WorkerSettings
from .topics import Topics


def run_worker(
    settings: WorkerSettings, catalog: Catalog, topics: Topics, loglevel: str = "warning"
) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ensure_changelog(topics, settings.bootstrap, topics.changelogs.name(settings.app_id, SNAPSHOTS))
    app, _topology = build(settings, catalog, topics)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()  # returns when the worker stops (signal or crash)
    return 0
