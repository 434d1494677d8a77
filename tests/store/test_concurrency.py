"""Several writers on one PostgreSQL store, as several sink processes run."""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from contextlib import closing

import psycopg
from support.postgres import fresh_schema

from engine.store import StoredEvent, open_store

from .helpers import Rated

WRITERS = 4


def test_concurrent_appends_keep_every_event_once_and_chains_intact(
    postgres_url: str, rated: Rated
) -> None:
    events = rated.events[:4000]
    with fresh_schema(postgres_url) as url:
        open_store(url).close()  # the tables, before the writers race
        start = threading.Barrier(WRITERS + 1)
        done = threading.Event()
        added: list[int] = []
        errors: list[BaseException] = []
        seen: list[StoredEvent] = []

        def writer(seed: int) -> None:
            # Each writer sends every event, in batches cut and ordered its own way, so
            # the same events and wallets are offered by all writers at once.
            rng = random.Random(seed)
            cuts = sorted(rng.sample(range(1, len(events)), 40))
            batches = [events[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True)]
            rng.shuffle(batches)
            store = open_store(url)
            try:
                start.wait()
                added.extend(store.append(batch) for batch in batches)
            except BaseException as exc:
                errors.append(exc)
            finally:
                store.close()

        def reader() -> None:
            # A consumer following the log must see positions arrive without holes.
            store = open_store(url)
            try:
                start.wait()
                while True:
                    finished = done.is_set()
                    after = seen[-1].position if seen else 0
                    for chunk in store.read_all(after, batch=500):
                        seen.extend(chunk)
                    if finished:
                        return
            except BaseException as exc:
                errors.append(exc)
            finally:
                store.close()

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
        follower = threading.Thread(target=reader)
        for t in [*threads, follower]:
            t.start()
        for t in threads:
            t.join()
        done.set()
        follower.join()

        assert errors == []
        assert sum(added) == len(events)
        assert [s.position for s in seen] == list(range(1, len(events) + 1))
        with closing(open_store(url)) as store:
            stored = [s for chunk in store.read_all() for s in chunk]
            assert stored == seen
            assert sorted(s.event_id for s in stored) == sorted(e.id for e in events)
            versions: dict[str, list[int]] = defaultdict(list)
            for s in stored:
                versions[s.wallet_id].append(s.version)
            assert all(v == list(range(1, len(v) + 1)) for v in versions.values())
            assert store.verify() == []


def test_a_store_opens_while_another_process_is_appending(postgres_url: str) -> None:
    """Every worker and sink opens the store, which makes sure its tables and indexes exist,
    while others append: opening takes no lock that waits for an append to commit (PostgreSQL's
    ``CREATE INDEX IF NOT EXISTS`` would, so the indexes are only created when missing)."""
    with fresh_schema(postgres_url) as url:
        open_store(url).close()
        with psycopg.connect(url) as appending:
            # What an append holds until it commits.
            appending.execute("LOCK TABLE events, inputs IN ROW EXCLUSIVE MODE")
            opened = threading.Event()

            def open_and_close() -> None:
                open_store(url).close()
                opened.set()

            threading.Thread(target=open_and_close, daemon=True).start()
            # Not a timing: a store that waits for the append never opens until it ends.
            assert opened.wait(timeout=60), "opening the store waited for an append"
            appending.rollback()
