"""The enrich stage: ``cdr.raw`` → decode and validate → the wallet by the SIM-route table →
``cdr.by-wallet``, one record per wallet partition and ``cdr.raw`` partition of a batch
(routed.py). What fails goes to ``cdr.rejected`` with its bytes, the reason and the origin.

Routing follows domain/routing.py: the wallet whose stint of the SIM covers the CDR's start,
from the shared directory (directory.py) over the latest catalog revision. A CDR no route
covers yet is held (holding.py) until one does, or its hold runs out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import msgspec

from ..codec import Rejected, decode_cdr
from ..domain import Catalog, Cdr
from ..domain.routing import Routes, covering_wallet
from ..flow import route
from .holding import Held, Holding
from .metrics import Metrics
from .positions import Batch, Record
from .producer import BatchProducer, wait_durable
from .routed import RoutedGroup
from .topics import Topics

Reject = Callable[[BatchProducer, Rejected, bytes | None], None]
Failed = Callable[[str, Exception, str, bytes], Rejected]


class Enricher:
    def __init__(
        self,
        names: Topics,
        out: BatchProducer,
        metrics: Metrics,
        holding: Holding,
        catalog: Callable[[], Catalog],
        routes: Routes,
        home: Callable[[str], int],
        reject: Reject,
        failed: Failed,
    ) -> None:
        self.names, self.out, self.metrics, self.holding = names, out, metrics, holding
        self.catalog, self.routes, self.home = catalog, routes, home
        self._reject, self._failed = reject, failed
        self.latest: dict[int, int] = {}
        """The last offset enriched per ``cdr.raw`` partition."""
        self.lock = asyncio.Lock()
        """One batch or release at a time: each waits for its own output to be durable."""

    async def batch(self, batch: Batch) -> dict[int, int | None]:
        """Enrich one batch; returns each partition's lowest held offset once it is
        durable (the commit floor)."""
        groups: dict[tuple[int, int], RoutedGroup] = {}
        catalog = self.catalog()
        for msg in batch.inputs:
            self.latest[msg.partition] = msg.offset
            try:
                cdr = decode_cdr(msg.value)
                if not isinstance(cdr, Rejected):
                    ts = int(cdr.started_at.timestamp())
                    wallet = covering_wallet(catalog, self.routes, cdr.iccid, ts)
                    if self._hold(msg, cdr, ts, wallet is None):
                        continue
                    target = wallet or route(catalog, self.routes, cdr, "", msg.value)
                    if isinstance(target, str):
                        self._add(groups, msg, target)
                        continue
                    cdr = target
            except Exception as exc:
                where = self._where(msg)
                self._reject(self.out, self._failed("enrich", exc, where, msg.value), msg.key)
                continue
            rejection = msgspec.structs.replace(cdr, origin=self._where(msg))
            self._reject(self.out, rejection, msg.key)
        self._flush(groups)
        await wait_durable(self.out)
        return self._floors({msg.partition for msg in batch.inputs})

    def _hold(self, msg: Record, cdr: Cdr, ts: int, uncovered: bool) -> bool:
        """Hold the CDR when no route covers it yet, or an earlier CDR of its SIM is held."""
        holding = self.holding
        if holding.holds(msg.partition, cdr.iccid) or (uncovered and holding.room()):
            holding.park(msg, cdr, ts)
            self.metrics.held.set(holding.count)
            return True
        return False

    async def release(self) -> dict[int, int | None]:
        """Route the held CDRs a route now covers, and those whose hold ran out."""
        catalog = self.catalog()
        routes = self.routes

        def covered(iccid: str, ts: int) -> bool:
            return covering_wallet(catalog, routes, iccid, ts) is not None

        gone = self.holding.release(time.time(), self.latest, covered)
        self.metrics.held.set(self.holding.count)
        if not gone:
            return {}
        groups: dict[tuple[int, int], RoutedGroup] = {}
        for held, routed in gone:
            if not routed:
                self.metrics.hold_expired.inc()
            self._route_held(groups, held, catalog)
        self._flush(groups)
        await wait_durable(self.out)
        return self._floors({held.record.partition for held, _ in gone})

    def _route_held(
        self, groups: dict[tuple[int, int], RoutedGroup], held: Held, catalog: Catalog
    ) -> None:
        msg = held.record
        target = route(catalog, self.routes, held.cdr, self._where(msg), msg.value)
        if isinstance(target, str):
            self._add(groups, msg, target)
        else:
            self._reject(self.out, target, msg.key)

    def _add(self, groups: dict[tuple[int, int], RoutedGroup], msg: Record, wallet: str) -> None:
        target = self.home(wallet)
        group = groups.get((target, msg.partition))
        if group is None:
            group = groups[(target, msg.partition)] = RoutedGroup(msg.partition)
        group.add(wallet, msg.offset, round(msg.timestamp * 1000), msg.value)
        if group.full():
            del groups[(target, msg.partition)]
            self.out.produce(self.names.cdr_by_wallet.name, wallet.encode(), group.encode(), target)

    def _flush(self, groups: dict[tuple[int, int], RoutedGroup]) -> None:
        by_wallet = self.names.cdr_by_wallet.name
        for (target, _), group in groups.items():
            # Keyed by its first wallet: every wallet of the record has this partition.
            self.out.produce(by_wallet, group.wallets[0].encode(), group.encode(), target)

    def _floors(self, partitions: set[int]) -> dict[int, int | None]:
        return {p: self.holding.floor(p) for p in partitions}

    def _where(self, msg: Record) -> str:
        return f"{self.names.cdr_raw.name}/{msg.partition}@{msg.offset}"
