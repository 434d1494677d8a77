"""The catalogs a worker decides with, by revision, following ``catalog.revisions``.

Every published revision's record is kept (its source compressed), but a catalog is built
only when it is needed: at a million SIMs one takes seconds and hundreds of MB to build, so
building every revision ever published would grow a worker with each publish. The newest
revision is built by the background reader before it becomes visible (it routes CDRs, and
``catalog publish`` moves every wallet onto it); an older one is built on first use (a
wallet recovered on it), and ``retain`` drops the built catalogs no owned wallet is on any
more, so a worker holds the newest catalog and the ones its wallets still use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import zlib
from collections.abc import Collection, Iterator, Mapping
from typing import Any

import msgspec
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from ..catalog import CatalogError
from ..domain import Catalog
from .acls import CATALOG_GROUP
from .kafka_security import client_config
from .outage import kafka_transient
from .recovery import POLL, POLL_BATCH, TIMEOUT, watermarks
from .revisions import CatalogRevision, check_topic, decode_revision
from .topics import StreamError, Topics

log = logging.getLogger(__name__)


class CatalogRevisions(Mapping[int, Catalog]):
    """Every published revision's catalog by number, kept up to date by a background
    consumer of ``catalog.revisions`` (no group: it assigns the one partition and reads it
    from the beginning, ``read_committed``). Thread-safe; a worker decides with
    ``self[max(state.revision, 1)]`` and, meeting an ``AdoptCatalog`` for a revision that
    has not reached it yet, awaits ``wait_for``.

    The keys are every revision read; ``self[n]`` builds revision ``n``'s catalog if it is
    not built (``built`` lists those that are). A revision whose source no longer loads (it
    was checked when published, so only a loader that changed since could refuse it) is
    left out once its build failed, and kept in ``failed``."""

    def __init__(
        self,
        bootstrap: str,
        topics: Topics,
        poll: float = POLL,
        built: Mapping[str, Catalog] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self._seeds = dict(built or {})
        """Catalogs already built, by the digest of their source: the worker's own file is
        loaded once, not a second time from its revision."""
        self.topic = topics.catalog_revisions.name
        self.failed: dict[int, CatalogError] = {}
        self._poll = poll
        self._records: dict[int, CatalogRevision] = {}
        """Each revision's record without its source, which is kept compressed in
        ``_sources`` (a million-SIM catalog's 64 MB of text is 5 MB compressed)."""
        self._sources: dict[int, bytes] = {}
        self._catalogs: dict[int, Catalog] = {}
        self._lock = threading.Lock()
        self._building = threading.Lock()
        """Held while a catalog is built, so two threads never build one twice at once."""
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._position = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer: Any = None
        self.error: Exception | None = None
        """What stopped the background consumer, if anything did."""

    def __getitem__(self, revision: int) -> Catalog:
        with self._lock:
            found = self._catalogs.get(revision)
        return found if found is not None else self._build(revision)

    def _usable(self) -> list[int]:
        """The revisions read, less those whose build failed (call it holding the lock)."""
        return [n for n in self._records if n not in self.failed]

    def __contains__(self, revision: object) -> bool:
        with self._lock:
            return revision in self._records and revision not in self.failed

    def __iter__(self) -> Iterator[int]:
        with self._lock:
            return iter(sorted(self._usable()))

    def __len__(self) -> int:
        with self._lock:
            return len(self._usable())

    @property
    def latest(self) -> int:
        """The highest revision read so far (0 before any)."""
        with self._lock:
            return max(self._usable(), default=0)

    @property
    def built(self) -> list[int]:
        """The revisions whose catalog is built and held now."""
        with self._lock:
            return sorted(self._catalogs)

    def revision(self, number: int) -> CatalogRevision:
        """The record of revision ``number`` (its digest, name and source)."""
        with self._lock:
            record, source = self._records[number], self._sources[number]
        return msgspec.structs.replace(record, source=zlib.decompress(source).decode())

    def retain(self, in_use: Collection[int]) -> list[int]:
        """Drop the built catalogs of revisions neither in ``in_use`` nor the latest (they
        are built again if asked for); returns the revisions dropped."""
        keep = {*in_use, self.latest}
        with self._lock:
            dropped = [n for n in self._catalogs if n not in keep]
            for n in dropped:
                del self._catalogs[n]
        if dropped:
            log.info("catalogs of revisions %s dropped: no wallet here is on them", dropped)
        return dropped

    def _build(self, revision: int, record: CatalogRevision | None = None) -> Catalog:
        """Revision ``revision``'s catalog, built now (from ``record``, or the record read);
        ``KeyError`` for a revision not read or whose source does not load."""
        with self._building:
            with self._lock:
                found = self._catalogs.get(revision)
                known = revision in self._records
            if found is not None:
                return found
            if revision in self.failed or (record is None and not known):
                raise KeyError(revision)
            record = record or self.revision(revision)
            try:
                catalog = self._seeds.pop(record.digest, None) or record.catalog()
            except CatalogError as exc:
                log.error("catalog %s does not load: %s", record.label, exc)
                self.failed[revision] = exc
                raise KeyError(revision) from None
            with self._lock:
                self._catalogs[revision] = catalog
            return catalog

    def add(self, *revisions: CatalogRevision) -> None:
        """Take records read from the topic (the consumer calls this with each batch): the
        newest of them that loads is built before any becomes visible, if it is newer than
        the latest; the others are built when asked for."""
        latest = self.latest
        for record in sorted(revisions, key=lambda r: r.revision, reverse=True):
            if record.revision <= latest:
                break
            with contextlib.suppress(KeyError):  # a source that does not load: in failed
                self._build(record.revision, record)
                break
        kept = [
            (r.revision, msgspec.structs.replace(r, source=""), zlib.compress(r.source.encode(), 1))
            for r in revisions
        ]
        with self._lock:
            for number, record, source in kept:
                self._records[number], self._sources[number] = record, source
            waiters = list(self._waiters)
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)

    def start(self, timeout: float = TIMEOUT) -> CatalogRevisions:
        """Start the consumer; return once everything published before the call is read."""
        check_topic(self.bootstrap, self.topic)
        self._consumer = Consumer(
            {
                **client_config(self.bootstrap),
                "group.id": CATALOG_GROUP,
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "log_level": 0,
            }
        )
        tp = TopicPartition(self.topic, 0)
        _low, end = watermarks(self._consumer, tp)
        self._consumer.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])
        self._thread = threading.Thread(target=self._run, name="catalog-revisions", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while self._position < end and self.error is None:
            if time.monotonic() > deadline:
                self.stop()
                raise StreamError(f"reading {self.topic}: not caught up after {timeout:g} s")
            time.sleep(0.01)
        if self.error is not None:
            raise StreamError(f"reading {self.topic}: {self.error}")
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None

    def _run(self) -> None:
        consumer = self._consumer
        try:
            while not self._stop.is_set():
                messages = consumer.consume(POLL_BATCH, self._poll)
                self.add(*(r for r in map(self._record, messages) if r is not None))
                # Past aborted records and transaction markers too, which are not delivered.
                (position,) = consumer.position([TopicPartition(self.topic, 0)])
                last = max((m.offset() or 0) + 1 for m in messages) if messages else 0
                self._position = max(self._position, position.offset, last)
        except Exception as exc:  # reported by start(), and to whoever looks at error
            log.exception("reading %s failed", self.topic)
            self.error = exc
        finally:
            consumer.close()

    def _record(self, message: Message) -> CatalogRevision | None:
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF or kafka_transient(error):
                return None
            raise StreamError(error.str())
        value = message.value()
        return decode_revision(value) if value is not None else None

    async def wait_for(self, revision: int, timeout: float) -> Catalog | None:
        """Revision ``revision``'s catalog once it has been read, or ``None`` after
        ``timeout`` seconds without it (never blocks the event loop while it waits)."""
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        waiter = (loop, event)
        deadline = loop.time() + timeout
        with self._lock:
            self._waiters.add(waiter)
        try:
            while True:
                event.clear()  # before looking, so an arrival meanwhile is not missed
                if revision in self:
                    return self.get(revision)
                if deadline - loop.time() <= 0:
                    return None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), deadline - loop.time())
        finally:
            with self._lock:
                self._waiters.discard(waiter)
