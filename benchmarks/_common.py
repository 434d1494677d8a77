"""What every benchmark prints beside its figures: machine, versions, and where JSON goes;
its progress lines; the fields of a decision record the Kafka benchmarks read, and a
reader that counts a worker's decisions and refusals."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from engine.stream.kafka_security import client_config

RESULTS = Path(__file__).parent / "results"
REPO = Path(__file__).resolve().parent.parent

STALL_TIMEOUT = 180.0
"""Seconds without a new decision before a Kafka benchmark's run is declared stuck."""

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


def publish(name: str, payload: dict[str, Any], env: dict[str, Any] | None = None) -> Path:
    """Print the environment (``environment()`` unless given) on one line, save ``payload``
    with it as ``results/<name>.json`` and print where."""
    env = environment() if env is None else env
    print("  ".join(f"{k}={v}" for k, v in env.items()))
    path = save(name, {**payload, "environment": env})
    print(f"wrote {path}")
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


class Outcomes(threading.Thread):
    """Counts a worker's outcomes, read (read_committed) from the start of ``wallet.events``
    and ``cdr.rejected`` of ``topics`` (an ``engine.stream.topics.Topics``): each decision
    under the kind ``classify`` gives it (none: not counted), each refusal at admission under
    ``refused``. ``log`` shows the progress of ``wait_for``."""

    def __init__(
        self,
        bootstrap: str,
        topics: Any,
        classify: Callable[[Decision], str | None],
        refused: str,
        log: Callable[[str], None],
    ) -> None:
        super().__init__(name="outcomes", daemon=True)
        events, rejected = topics.wallet_events, topics.cdr_rejected
        self.consumer = Consumer(
            {
                **client_config(bootstrap),
                "group.id": f"bench-outcomes-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "log_level": 0,
            }
        )
        parts = [TopicPartition(events.name, p, OFFSET_BEGINNING) for p in range(events.partitions)]
        parts += [
            TopicPartition(rejected.name, p, OFFSET_BEGINNING) for p in range(rejected.partitions)
        ]
        self.consumer.assign(parts)
        self.rejected_topic = rejected.name
        self.classify = classify
        self.refused = refused
        self.log = log
        self.kinds: Counter[str] = Counter()
        self.count = 0
        """Outcomes of every kind (kept apart: ``kinds`` may grow while another thread reads)."""
        self.last = time.monotonic()
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                for msg in self.consumer.consume(10_000, timeout=0.2):
                    value = msg.value()
                    if msg.error() is not None or value is None:
                        continue
                    if msg.topic() == self.rejected_topic:
                        kind: str | None = self.refused
                    else:
                        kind = self.classify(decision_decoder.decode(value))
                        if kind is None:
                            continue
                    self.kinds[kind] += 1
                    self.count += 1
                    self.last = time.monotonic()
        finally:
            self.consumer.close()

    def counted(self, kinds: tuple[str, ...] | None = None) -> int:
        """The outcomes of ``kinds`` (of every kind: all of them) counted so far."""
        if kinds is None:
            return self.count
        return sum(self.kinds[k] for k in kinds)

    def wait_for(
        self, count: int, worker: Any, label: str, kinds: tuple[str, ...] | None = None
    ) -> float:
        """Until ``count`` outcomes of ``kinds`` (of every kind: all); the monotonic time of
        the last outcome. The worker dying or the outcomes stalling raises."""
        shown = time.monotonic()
        while (n := self.counted(kinds)) < count:
            worker.check()
            now = time.monotonic()
            if now - self.last > STALL_TIMEOUT and now - shown > STALL_TIMEOUT:
                raise RuntimeError(f"{label}: stalled at {n:,}/{count:,}")
            if now - shown >= 10:
                self.log(f"{label}: {n:,}/{count:,} decided")
                shown = now
            time.sleep(0.05)
        return self.last

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=30)
