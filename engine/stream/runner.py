"""Running the worker process: Faust's worker loop around our topology."""

from __future__ import annotations

import logging

import faust

from ..domain import Catalog
from .agents import build
from .settings import WorkerSettings
from .topics import Topics


class _Worker(faust.Worker):
    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        # The logging setup leaves the root logger at DEBUG (its handler filters), so every
        # debug call in aiokafka would still build a log record: about a tenth of the CPU.
        logger.setLevel(level or logging.WARNING)
        for handler in logger.handlers:
            handler.setLevel(level or logging.WARNING)


def run_worker(
    settings: WorkerSettings, catalog: Catalog, topics: Topics, loglevel: str = "warning"
) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app, _topology = build(settings, catalog, topics)
    worker = _Worker(app, loglevel=loglevel.upper(), quiet=True)
    worker.execute_from_commandline()  # returns when the worker stops (signal or crash)
    return 0
