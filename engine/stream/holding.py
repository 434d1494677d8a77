"""CDRs held back by enrich: their SIM has no route covering their start *yet*.

A CDR may reach enrich before the command that provisions its SIM has been decided and its
route has reached the shared directory (the operator sent both at once, or the attach
waits behind other commands of its wallet). Enrich therefore holds such a CDR for a
while and routes it as soon as a route covers it. Held CDRs leave by three doors:
- a route now covers them: routed, as if they had just arrived;
- ``seconds`` have passed since the record's Kafka timestamp (a backlog read long after it
  was produced is not held again), or the partition has moved ``max_offsets`` past it
  (the rating side recognises a late input only within its reorder window, processor.py):
  routed by the fallback rule, which rejects it (``unknown_sim`` at enrich when no wallet
  ever had the SIM, else the wallet's own rejection);
- the partition is revoked: dropped here, and read again by the next owner, because a
  held CDR's offset bounds what enrich commits for its partition (`floor`).
A later CDR of a held SIM is held behind it, so a SIM's CDRs keep their order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import NamedTuple

from ..domain import Cdr
from .positions import Record


class Held(NamedTuple):
    record: Record
    cdr: Cdr
    ts: int
    """The CDR's start, epoch seconds (what routes are asked about)."""
    deadline: float
    """Wall-clock second after which it is no longer held."""


Covered = Callable[[str, int], bool]
"""Whether a route covers (ICCID, instant) now."""


class Holding:
    """The held CDRs of each ``cdr.raw`` partition, in offset order."""

    def __init__(self, seconds: float, max_offsets: int, limit: int) -> None:
        self.seconds = seconds
        self.max_offsets = max_offsets
        self.limit = limit
        """At most this many held at once; beyond it a CDR is not held at all."""
        self.held: dict[int, list[Held]] = {}
        self._sims: dict[int, Counter[str]] = {}
        self.count = 0

    def holds(self, partition: int, iccid: str) -> bool:
        """Whether an earlier CDR of the SIM is held (a later one must wait behind it)."""
        sims = self._sims.get(partition)
        return sims is not None and sims[iccid] > 0

    def room(self) -> bool:
        return self.seconds > 0 and self.count < self.limit

    def park(self, record: Record, cdr: Cdr, ts: int) -> None:
        deadline = record.timestamp + self.seconds
        self.held.setdefault(record.partition, []).append(Held(record, cdr, ts, deadline))
        self._sims.setdefault(record.partition, Counter())[cdr.iccid] += 1
        self.count += 1

    def floor(self, partition: int) -> int | None:
        """The lowest held offset of ``partition``: its commit may not pass it."""
        held = self.held.get(partition)
        return held[0].record.offset if held else None

    def release(
        self, now: float, latest: dict[int, int], covered: Covered
    ) -> list[tuple[Held, bool]]:
        """The held CDRs that may go, in offset order per partition, each with whether a
        route covers it (else its hold ran out). ``latest``: the last offset enriched per
        partition."""
        out: list[tuple[Held, bool]] = []
        for partition, held in self.held.items():
            waiting: list[Held] = []
            stuck: set[str] = set()  # SIMs with an earlier CDR still held
            top = latest.get(partition, -1)
            for item in held:
                iccid = item.cdr.iccid
                if iccid not in stuck:
                    if covered(iccid, item.ts):
                        out.append((item, True))
                        continue
                    if now >= item.deadline or top - item.record.offset >= self.max_offsets:
                        out.append((item, False))
                        continue
                stuck.add(iccid)
                waiting.append(item)
            self.held[partition] = waiting
        for item, _ in out:
            self._sims[item.record.partition][item.cdr.iccid] -= 1
            self.count -= 1
        return out

    def forget(self, partitions: Iterable[int]) -> None:
        """Partitions no longer ours: their held CDRs are read again by the next owner."""
        for partition in partitions:
            self.count -= len(self.held.pop(partition, ()))
            self._sims.pop(partition, None)
