"""The command line of a worker process, as tests and benchmarks start one."""

from __future__ import annotations

import sys
from pathlib import Path


def worker_argv(catalog: Path, data_dir: Path, loglevel: str, *extra: str) -> list[str]:
    """``python -m engine.cli worker`` with no clock ticks (inputs carry their own time)."""
    return [
        sys.executable,
        "-m",
        "engine.cli",
        "worker",
        "--catalog",
        str(catalog),
        "--tick-interval",
        "0",
        "--data-dir",
        str(data_dir),
        "--loglevel",
        loglevel,
        *extra,
    ]
