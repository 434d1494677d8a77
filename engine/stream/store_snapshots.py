"""The sink's wallet snapshots in the event store (engine/store/snapshots.py), taken as it goes.

After every ``snapshot_every`` events the sink appended since its last round, the wallets
those events belong to are snapshotted at the store's current cut while the sink goes on
consuming: each wallet's state is folded from its previous snapshot and the events after it
(``take`` with those wallets), never from its whole history. One round at a time.

Given the store's URL, a round runs in a process of its own (spawned once, with its own
connection; a password comes from the same environment): folding is Python, and on a thread
it would hold the interpreter lock the sink's appends need between their SQLite steps.
Without a URL (a store handed over in process) it runs on a thread over the sink's store,
whose every call holds the store's lock.

A round writes only to the snapshot table. A round that fails (the store away, anything
else) is logged and counted, and its wallets are taken again in the next round: snapshots
are derived from the events, so one missing only makes a fold longer.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future, ProcessPoolExecutor

from ..store.base import EventStore
from ..store.snapshots import Taken, take
from .metrics import SinkMetrics

log = logging.getLogger("rating-engine")


class StoreSnapshots:
    """Counts the sink's appended events and their wallets, and starts a round every
    ``every`` events (0: never) once the previous round is over."""

    def __init__(
        self, store: EventStore, every: int, metrics: SinkMetrics, url: str | None = None
    ) -> None:
        self.store = store
        self.every = every
        self.metrics = metrics
        self.url = url
        """The store's URL: rounds run in a process of their own that opens it."""
        self._lock = threading.Lock()
        self._wallets: set[str] = set()
        """Wallets with events appended since the last round started (or that it failed)."""
        self._events = 0
        """Events appended since the last round started."""
        self._thread: threading.Thread | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._future: Future[Taken] | None = None
        self.rounds = 0
        self.failures = 0
        self.written = 0
        self.last: Taken | None = None

    def appended(self, wallets: Iterable[str], events: int) -> None:
        """The sink durably appended ``events`` new events of ``wallets``: start a round once
        there are ``every`` of them and the previous round is over."""
        if self.every <= 0 or events <= 0:
            return
        with self._lock:
            self._wallets.update(wallets)
            self._events += events
            if self._events < self.every or self.running:
                return
            now, self._wallets, self._events = sorted(self._wallets), set(), 0
            if self.url is None:
                self._thread = threading.Thread(
                    target=self._round, args=(now,), name="store-snapshots", daemon=True
                )
                self._thread.start()
                return
            try:
                if self._pool is None:
                    context = multiprocessing.get_context("spawn")  # no fork under librdkafka
                    self._pool = ProcessPoolExecutor(
                        1, context, initializer=_watch_parent, initargs=(os.getpid(),)
                    )
                future = self._pool.submit(_take_in_child, self.url, now)
            except Exception as exc:  # a pool whose process died: a new one next round
                self._pool = None
                self._failed(now, exc)
                return
            self._future = future
        future.add_done_callback(lambda done: self._finished(now, done))

    @property
    def running(self) -> bool:
        if self._future is not None and not self._future.done():
            return True
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the round under way, if any."""
        thread, future = self._thread, self._future
        if thread is not None:
            thread.join(timeout)
        if future is not None:
            with contextlib.suppress(Exception):  # counted by its callback
                future.result(timeout)

    def close(self) -> None:
        """Wait for the round under way and stop the snapshots' process (the sink does,
        before its store is closed)."""
        self.wait()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _finished(self, wallets: list[str], done: Future[Taken]) -> None:
        try:
            taken = done.result()
        except Exception as exc:
            with self._lock:
                self._failed(wallets, exc)
            return
        self._took(taken)

    def _round(self, wallets: list[str]) -> None:
        try:
            taken = take(self.store, wallets)
        except Exception as exc:  # never the sink's business: the events are stored
            with self._lock:
                self._failed(wallets, exc)
            return
        self._took(taken)

    def _failed(self, wallets: list[str], exc: BaseException) -> None:
        """A failed round (the caller holds the lock): its wallets go to the next one."""
        self._wallets.update(wallets)
        self.failures += 1
        self.metrics.snapshot_failures.inc()
        log.warning(
            "store snapshots of %d wallets failed (taken again in the next round): %s",
            len(wallets),
            exc,
        )

    def _took(self, taken: Taken) -> None:
        with self._lock:
            self.rounds += 1
            self.written += taken.written
            self.last = taken
        self.metrics.snapshots.inc(taken.written)
        self.metrics.snapshot_position.set(taken.position)
        log.info(
            "store snapshots: %d wallets at position %d (%d events folded)",
            taken.written,
            taken.position,
            taken.folded,
        )


def _watch_parent(parent: int) -> None:
    """In the snapshots' process: end it when the sink's process is gone (killed, say),
    rather than keep its store connection open with nobody to serve. Ctrl-C reaches the
    whole process group: the sink stops and ends this process once its round is done."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


_child_store: EventStore | None = None
"""The snapshots' process's own connection, opened at its first round."""


def _take_in_child(url: str, wallets: list[str]) -> Taken:
    """A round in the snapshots' process. Its errors come back as plain ``RuntimeError``s
    (a store error's own arguments may not survive the trip), and a failed round drops the
    connection, so that the next one opens a new one."""
    global _child_store
    from ..store import open_store

    try:
        if _child_store is None:
            _child_store = open_store(url)
        return take(_child_store, wallets)
    except Exception as exc:
        store, _child_store = _child_store, None
        if store is not None:
            with contextlib.suppress(Exception):
                store.close()
        raise RuntimeError(f"{type(exc).__name__}: {exc}") from None
