"""The shared directory: where each SIM is (its SIM-routes) and which wallets were opened by
command, on one compacted topic (``wallet.directory``) that every worker reads whole, as a
global table.

A wallet's owner writes its entries in the transaction of the decision that changed them
(agents.py), so an entry exists exactly when its decision does, and a fenced worker's
never lands. Entries are keyed per SIM *and wallet* (``["sim", iccid, wallet]``): a move is
decided by two owners, each writing its own side, and compaction keeps both.

Enrich routes by `Directory.routes` (domain/routing.py has the rule); the clock ticks the
wallets in `Directory.wallets` beside the catalog's; ``catalog publish`` reads it once
(`read_directory`) to refuse a revision that would strand a SIM and to tell every wallet.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

import msgspec
from confluent_kafka import KafkaError, TopicPartition

from ..domain import Catalog, WalletState
from ..domain.events import Event, WalletClosed, WalletOpened
from ..domain.routing import MOVES, SimRoute, routes_after
from .recovery import POLL, POLL_BATCH, TIMEOUT, read_partition, reader, watermarks
from .topics import StreamError, Topics

log = logging.getLogger("rating-engine")

DIRECTORY_GROUP = "rating-engine-directory"
"""Names the directory's readers (their ACLs); they never join or commit."""


class WalletEntry(msgspec.Struct, frozen=True):
    """A wallet opened by command, as its owner last decided it."""

    wallet_id: str
    currency: str
    open: bool
    revision: int = 0


Entry = SimRoute | WalletEntry
_encode = msgspec.json.Encoder().encode
_route = msgspec.json.Decoder(SimRoute)
_wallet = msgspec.json.Decoder(WalletEntry)
_key = msgspec.json.Decoder(tuple[str, ...])


def entry_key(entry: Entry) -> bytes:
    if isinstance(entry, SimRoute):
        return _encode(("sim", entry.iccid, entry.wallet))
    return _encode(("wallet", entry.wallet_id))


def entry_value(entry: Entry) -> bytes:
    return _encode(entry)


DIRECTORY_EVENTS = frozenset((*MOVES, WalletOpened, WalletClosed))
"""The event types after which a decision may change the directory (`entries_after`); a
set of exact types (no event type derives from another), asked once per decision."""


def entries_after(
    state: WalletState, catalog: Catalog, events: Iterable[Event], ts: int
) -> list[Entry]:
    """What a decision changed in the directory: the routes of the SIMs it moved, and the
    wallet's entry when a command opened it or it closed."""
    events = tuple(events)
    out: list[Entry] = []
    if any(isinstance(e, MOVES) for e in events):
        out.extend(routes_after(state, catalog, events, ts))
    if state.terms is not None and any(isinstance(e, WalletOpened | WalletClosed) for e in events):
        out.append(WalletEntry(state.wallet_id, state.terms.currency, not state.closed))
    return out


class Table:
    """The directory's content: routes (ICCID -> wallet -> route) and opened wallets.

    Written by one thread, read by the event loop: an inner map is replaced, never changed
    in place, so a reader iterating it never sees it change."""

    def __init__(self) -> None:
        self.routes: dict[str, dict[str, SimRoute]] = {}
        self.wallets: dict[str, WalletEntry] = {}
        self.changes = 0
        """Entries applied so far: a reader that waits for a route watches it grow."""
        self.failure: Exception | None = None
        """What stopped the follower, if anything did (the table then goes stale)."""
        self._shared: dict[object, Any] = {}
        """One copy of each wallet id, plan, pool and stints a route holds (`_compact`)."""

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """One record of the topic; one this version cannot read is logged and skipped."""
        try:
            kind = _key.decode(key or b"")
            if kind[:1] == ("sim",) and len(kind) == 3:
                inner = dict(self.routes.get(kind[1], {}))
                if value is None:
                    inner.pop(kind[2], None)
                else:
                    route = self._compact(kind[1], _route.decode(value))
                    inner[route.wallet if route.wallet == kind[2] else kind[2]] = route
                self.routes[kind[1]] = inner
            elif kind[:1] == ("wallet",) and len(kind) == 2:
                if value is None:
                    self.wallets.pop(kind[1], None)
                else:
                    self.wallets[kind[1]] = _wallet.decode(value)
            else:
                raise ValueError(f"unknown entry kind {kind!r}")
        except (msgspec.DecodeError, ValueError) as exc:
            log.warning("wallet directory: skipped the entry keyed %r: %s", key, exc)
            return
        self.changes += 1

    def _compact(self, iccid: str, route: SimRoute) -> SimRoute:
        """``route`` holding the key's ICCID and one shared copy of its wallet id, plan,
        pool and stints: a million routes of ten thousand wallets, on one plan and attached
        at a few instants, take about half the memory of each decoded on its own."""
        share = self._share
        return msgspec.structs.replace(
            route,
            iccid=iccid if iccid == route.iccid else route.iccid,
            wallet=share(route.wallet),
            plan=share(route.plan),
            pool=None if route.pool is None else share(route.pool),
            stints=share(route.stints),
        )

    def _share(self, value: Any) -> Any:
        found = self._shared.get(value)
        if found is not None:
            return found
        if len(self._shared) < SHARED_MAX:
            self._shared[value] = value
        return value


SHARED_MAX = 100_000
"""Most distinct values `Table` keeps one copy of (past it, new ones are not shared)."""


class Directory(Table):
    """The directory as this worker reads it: `start` reads it to its end, then a thread
    follows the topic until `stop`."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__()
        self.bootstrap, self.topic = bootstrap, topic
        self._stopping = threading.Event()
        self._caught_up = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="directory", daemon=True)

    def start(self, timeout: float = TIMEOUT) -> None:
        """Read the directory to its present end (raises `StreamError` if it cannot)."""
        self._thread.start()
        if not self._caught_up.wait(timeout) or self.failure is not None:
            self.stop()
            raise StreamError(
                f"could not read {self.topic} from {self.bootstrap}: {self.failure or 'timed out'}"
            )

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def _follow(self) -> None:
        consumer: Any = None
        try:
            consumer = reader(self.bootstrap, DIRECTORY_GROUP)
            _, end = watermarks(consumer, TopicPartition(self.topic, 0))
            consumer.assign([TopicPartition(self.topic, 0, 0)])
            if end == 0:
                self._caught_up.set()
            while not self._stopping.is_set():
                for message in consumer.consume(POLL_BATCH, timeout=POLL):
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            self._caught_up.set()
                            continue
                        raise StreamError(error.str())
                    self.apply(message.key(), message.value())
                    if (message.offset() or 0) >= end - 1:
                        self._caught_up.set()
        except Exception as exc:  # reported by start(), or logged once running
            self.failure = exc
            log.error("wallet directory: stopped following %s: %s", self.topic, exc)
            self._caught_up.set()
        finally:
            if consumer is not None:
                consumer.close()


def read_directory(bootstrap: str, topics: Topics) -> Table:
    """The directory as it stands now, read once to its end (for the CLI)."""
    table = Table()
    for message in read_partition(
        bootstrap, topics.wallet_directory.name, 0, group=DIRECTORY_GROUP
    ):
        table.apply(message.key(), message.value())
    return table


def not_following(directory: Table, revisions: object) -> str | None:
    """Why this worker's shared tables may be stale (``None``: both are followed): its
    directory's or its catalog revisions' follower stopped. A worker in that state routes
    or decides with what it last read, so it reports itself not ready (`/readyz`)."""
    problems = []
    if directory.failure is not None:
        problems.append(f"wallet.directory is not followed: {directory.failure}")
    error = getattr(revisions, "error", None)
    if error is not None:
        problems.append(f"catalog.revisions is not followed: {error}")
    return "; ".join(problems) or None
