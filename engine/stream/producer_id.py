"""A new idempotent producer's id: the publisher hands over no record before it has one.

librdkafka asks for the id on a connection to a broker it learned from the metadata, which
it opens only on demand; a new producer whose first ask finds none (or a broker just started
whose coordinator is still loading) asks again after half a second, and every record handed
over meanwhile waits in its queue, stamped with the time it was handed over. So without the
wait a run's first records reach ``cdr.raw`` up to half a second late (in 8 of 12 fresh runs
measured on the local broker): a ``--rate`` would not be steady from its start, and the
worker would seem to have taken that half second. librdkafka says when the id has come only
in its statistics, so the producer reports them while it waits (and, cheaply ignored, after).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import msgspec
from tqdm import tqdm

PRODUCER_ID_WAIT = 15.0
"""Seconds to wait for the producer's id before sending anyway (the records then wait in
librdkafka's queue, which keeps asking; a refusal is a fatal error, reported as such)."""

STATS_INTERVAL_MS = 50
"""How often librdkafka reports the producer's state (its id among it) while we wait."""


class _IdempotenceState(msgspec.Struct):
    idemp_state: str = ""


class _Stats(msgspec.Struct):
    """The one part of librdkafka's statistics read here."""

    eos: _IdempotenceState | None = None


_stats_decoder = msgspec.json.Decoder(_Stats)

ASSIGNED = "Assigned"


class ProducerIdWatch:
    """A producer's idempotence state as librdkafka reports it: give the producer `config`,
    then `wait` before the first record."""

    def __init__(self) -> None:
        self.state = ""
        """The state librdkafka last reported (``""`` before its first report)."""

    def config(self) -> dict[str, Any]:
        return {"statistics.interval.ms": STATS_INTERVAL_MS, "stats_cb": self.on_stats}

    def on_stats(self, stats: str) -> None:
        if self.state != ASSIGNED:  # once it has its id, nothing more to read
            eos = _stats_decoder.decode(stats).eos
            self.state = eos.idemp_state if eos is not None else ""

    def wait(self, poll: Callable[[float], None], failed: Callable[[], bool]) -> None:
        """Serve librdkafka's reports (``poll``) until the producer has its id, it failed
        (a cluster refusing idempotent writes), or `PRODUCER_ID_WAIT` seconds passed."""
        seconds = PRODUCER_ID_WAIT
        deadline = time.monotonic() + seconds
        while self.state != ASSIGNED and not failed():
            left = deadline - time.monotonic()
            if left <= 0:
                tqdm.write(
                    f"rating-engine: kafka: the producer has no id from the cluster after "
                    f"{seconds:g} s; sending anyway (records wait until it has one)",
                    file=sys.stderr,
                )
                return
            poll(min(left, STATS_INTERVAL_MS / 1000))
