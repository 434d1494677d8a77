"""What every benchmark prints beside its figures: machine, versions, and where JSON goes;
its progress lines; and the fields of a decision record the Kafka benchmarks read."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

RESULTS = Path(__file__).parent / "results"
REPO = Path(__file__).resolve().parent.parent

# The benchmarks share the tests' helpers (catalog builders, a private PostgreSQL server),
# which are no part of the shipped package: found on the path, not installed.
TESTS = Path(__file__).resolve().parent.parent / "tests"
if str(TESTS) not in sys.path:
    sys.path.append(str(TESTS))


def environment() -> dict[str, Any]:
    from importlib.metadata import version

    def v(name: str) -> str:
        try:
            return version(name)
        except Exception:
            return "-"

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "msgspec": v("msgspec"),
        "immutables": v("immutables"),
        "orjson": v("orjson"),
        "revision": revision(),
        # Absolute figures move with whatever else shares the machine: every file says how
        # loaded it was when its figures were taken.
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def revision() -> str:
    """``git describe --always --dirty`` of the checkout, or ``-``."""
    try:
        done = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "-"
    return done.stdout.strip() or "-"


def table(rows: list[tuple[str, str]], title: str) -> str:
    width = max(len(r[0]) for r in rows)
    lines = [title, "-" * len(title)]
    lines += [f"{name:<{width}}  {value:>16}" for name, value in rows]
    return "\n".join(lines)


def save(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def logger(name: str) -> Callable[[str], None]:
    """A ``log(message)`` that shows progress as ``[name] message`` on stderr, at once, apart
    from the table on stdout."""

    def log(message: str) -> None:
        print(f"[{name}] {message}", file=sys.stderr, flush=True)

    return log


class DecisionInput(msgspec.Struct):
    """The one field of a decision record on ``wallet.events`` most benchmarks read: its
    ``input`` (``cdr:...`` for a CDR, ``cmd:...`` for a command, ``cmd:adj:...`` for a
    replay's adjustment)."""

    input: str


class EventType(msgspec.Struct):
    type: str


class Decision(DecisionInput):
    """A decision record's ``input`` and the type of each of its events."""

    events: list[EventType] = []


input_decoder = msgspec.json.Decoder(DecisionInput)
decision_decoder = msgspec.json.Decoder(Decision)
