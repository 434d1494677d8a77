"""Running the worker process: Faust's worker loop around our topology."""

from __future__ import annotations

from collections.abc import Mapping

from ..domain import Catalog
from .agents import build
from .faust_compat import QuietWorker
from .settings import WorkerSettings
from .topics import Topics


def run_worker(
    settings: WorkerSettings,
    catalog: Catalog,
    topics: Topics,
    loglevel: str = "warning",
    revisions: Mapping[int, Catalog] | None = None,
) -> int:
    """``revisions``: the live catalogs by revision (``revisions.CatalogRevisions``,
    started), which the topology decides with."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app, topology = build(settings, catalog, topics, revisions=revisions)
    worker = QuietWorker(app, loglevel=loglevel.upper(), quiet=True)
    garbage = topology.vitals.garbage
    garbage.start()  # this process is the worker's: its collector is tuned and timed
    try:
        worker.execute_from_commandline()  # returns when the worker stops (signal or crash)
    finally:
        garbage.stop()
        topology.ownership.input_reader.close()
    return 0
