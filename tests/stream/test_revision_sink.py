"""The sink keeps every catalog revision: on a real broker, into a real SQLite store, those
published before it started and those published while it runs, each once."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import msgspec
import pytest

from engine.cli import main
from engine.store import EventStore, StoredRevision, StoreUnavailable, open_store
from engine.stream.outage import Backoff
from engine.stream.revision_sink import RevisionKeeper
from engine.stream.revisions import publish_revision, revision_of
from engine.stream.topics import Topics

from .fresh_topics import fresh_topics

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"


@pytest.fixture
def topics(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Topics]:
    with fresh_topics(kafka_bootstrap, tmp_path, monkeypatch) as loaded:
        yield loaded


def _until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _second(tmp_path: Path) -> Path:
    path = tmp_path / "prices.yaml"
    text = EXAMPLE.read_text(encoding="utf-8")
    path.write_text(text.replace("ACME Logistics (fleet telematics)", "ACME Two", 1))
    return path


def test_revisions_before_and_during_the_run_are_stored_once(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    first = revision_of(EXAMPLE, 1)
    publish_revision(kafka_bootstrap, topics, first)
    store = open_store(f"sqlite:///{tmp_path / 'events.db'}")
    store.put_revision(StoredRevision(*msgspec.structs.astuple(first)))
    keeper = RevisionKeeper(kafka_bootstrap, topics, store).start()
    try:
        _until(lambda: keeper.seen == 1)
        second = revision_of(_second(tmp_path), 2)
        publish_revision(kafka_bootstrap, topics, second)
        _until(lambda: len(store.revisions()) == 2)
        assert keeper.stored == 1  # the first was in the store already
        kept = store.revisions()
        assert [(r.revision, r.digest, r.name) for r in kept] == [
            (1, first.digest, "catalog.yaml"),
            (2, second.digest, "prices.yaml"),
        ]
        assert kept[1].source == second.source and kept[1].published_at == second.published_at
    finally:
        keeper.stop()
        store.close()
    assert keeper.error is None


class _Flaky:
    """A store whose server is away for the first two offers."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.failures = 2

    def put_revision(self, revision: StoredRevision) -> bool:
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("lost the event store", "connection_lost")
        return self.store.put_revision(revision)


def test_a_store_out_of_reach_is_waited_out(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    publish_revision(kafka_bootstrap, topics, revision_of(EXAMPLE, 1))
    store = open_store(f"sqlite:///{tmp_path / 'events.db'}")
    flaky = _Flaky(store)
    backoff = Backoff(initial=0.01, cap=0.05)
    keeper = RevisionKeeper(kafka_bootstrap, topics, flaky, backoff).start()  # type: ignore[arg-type]
    try:
        _until(lambda: keeper.stored == 1)
        assert flaky.failures == 0 and [r.revision for r in store.revisions()] == [1]
    finally:
        keeper.stop()
        store.close()


def test_the_sink_command_stores_the_revisions(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish_revision(kafka_bootstrap, topics, revision_of(EXAMPLE, 1))
    url = f"sqlite:///{tmp_path / 'events.db'}"
    argv = ["sink", "--store", url, "--bootstrap", kafka_bootstrap, "--idle-exit", "3"]
    argv += ["--group", f"g-{tmp_path.name}"]
    assert main(argv) == 0
    assert "1 catalog revisions stored" in capsys.readouterr().out
    with closing(open_store(url)) as store:
        assert [r.name for r in store.revisions()] == ["catalog.yaml"]
