"""Running the worker process: Faust's worker loop around our topology."""

from __future__ import annotations

from ..domain import Catalog
from .agents import build
from .faust_compat import QuietWorker
from .settings import WorkerSettings
from .topics import Topics


def run_worker(
    settings: WorkerSettings, catalog: Catalog, topics: Topics, loglevel: str = "warning"
) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app, _topology = build(settings, catalog, topics)
    worker = QuietWorker(app, loglevel=loglevel.upper(), quiet=True)
    worker.execute_from_commandline()  # returns when the worker stops (signal or crash)
    return 0
