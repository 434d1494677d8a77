"""The scripts of ``benchmarks/``, loaded for their tests under names of their own.

A script's file name can be a package's name too (``benchmarks/stream.py`` and the
``tests/stream`` package), so a plain ``import stream`` gets whichever came first in the
session; loading from the file under ``benchmarks.<name>`` gets the script every time."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py``, loaded once; its own imports (``_common``, ``report``) come
    from ``benchmarks/`` as they do when it runs as a script."""
    qualified = f"benchmarks.{name}"
    if qualified in sys.modules:
        return sys.modules[qualified]
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(qualified, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None, f"no benchmarks/{name}.py"
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module
    spec.loader.exec_module(module)
    return module
