"""The live table of catalogs a worker decides with: it follows ``catalog.revisions`` on a
real broker, builds the newest revision before it is seen and the others on first use, and
lets go of those no wallet of the worker is on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest
from domain.builders import adopt_catalog

from engine.catalog import load_catalog
from engine.domain import Cdr
from engine.domain.routing import wallet_of
from engine.offline.generate import generate_cdrs
from engine.stream.live_catalogs import CatalogRevisions
from engine.stream.processor import RatingProcessor
from engine.stream.revisions import CatalogRevision, publish_revision, revision_of
from engine.stream.topics import Topics, load_topics

from .harness import CATALOG, changed_catalog

ACME = "name: ACME Logistics (fleet telematics)"


@pytest.fixture
def topics(fresh_topics: Topics) -> Topics:
    return fresh_topics


def _renamed(tmp_path: Path, number: int) -> CatalogRevision:
    """The example catalog with acme renamed ``Acme <number>``, as revision ``number``."""
    path = changed_catalog(tmp_path, f"r{number}.yaml", (ACME, f"name: Acme {number}"))
    return revision_of(path, number)


def _offline(*records: CatalogRevision) -> CatalogRevisions:
    """A table fed by hand (no broker): what its consumer does with each batch it reads."""
    revisions = CatalogRevisions("127.0.0.1:1", load_topics())
    revisions.add(*records)
    return revisions


# ---- on a real broker ----------------------------------------------------------------------


def test_the_live_table_catches_up_then_follows(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    publish_revision(kafka_bootstrap, topics, revision_of(CATALOG, 1))
    revisions = CatalogRevisions(kafka_bootstrap, topics).start()
    try:
        assert (list(revisions), revisions.latest, revisions.built) == ([1], 1, [1])
        assert revisions[1].wallets["acme"].name.startswith("ACME")

        async def adopt() -> tuple[object, object]:
            missing = await revisions.wait_for(2, timeout=0.2)
            waiting = asyncio.ensure_future(revisions.wait_for(2, timeout=60))
            await asyncio.sleep(0.1)
            later = _renamed(tmp_path, 2)
            await asyncio.to_thread(publish_revision, kafka_bootstrap, topics, later)
            return missing, await waiting

        missing, found = asyncio.run(adopt())
        assert missing is None
        assert found is revisions[2] and revisions[2].wallets["acme"].name == "Acme 2"
        assert revisions.latest == 2 and len(revisions) == 2 and revisions.built == [1, 2]
        assert revisions.revision(2).name == "r2.yaml"
    finally:
        revisions.stop()


def test_the_live_table_starts_on_an_empty_topic(kafka_bootstrap: str, topics: Topics) -> None:
    revisions = CatalogRevisions(kafka_bootstrap, topics).start()
    try:
        assert (len(revisions), revisions.latest, revisions.built) == (0, 0, [])
        assert asyncio.run(revisions.wait_for(1, timeout=0.1)) is None
    finally:
        revisions.stop()


def test_only_the_newest_revision_is_built_at_start_the_others_when_asked(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    for number in (1, 2, 3):
        publish_revision(kafka_bootstrap, topics, _renamed(tmp_path, number))
    revisions = CatalogRevisions(kafka_bootstrap, topics).start()
    try:
        assert (list(revisions), revisions.latest, revisions.built) == ([1, 2, 3], 3, [3])
        assert 1 in revisions and revisions.built == [3]  # knowing it builds nothing
        first = revisions[1]
        assert first.wallets["acme"].name == "Acme 1" and revisions.built == [1, 3]
        assert revisions[1] is first  # built once, then held
        assert revisions.retain([2]) == [1] and revisions.built == [3]
        assert revisions.retain([]) == [] and revisions.built == [3]  # the latest stays
        assert revisions[1] is not first and revisions[1].wallets["acme"].name == "Acme 1"
    finally:
        revisions.stop()


# ---- pieces that need no broker ------------------------------------------------------------


def test_a_revision_whose_catalog_is_built_already_is_not_built_again(tmp_path: Path) -> None:
    loaded = load_catalog(CATALOG)
    first = revision_of(CATALOG, 1)
    other = _renamed(tmp_path, 2)
    revisions = CatalogRevisions("127.0.0.1:1", load_topics(), built={first.digest: loaded})
    revisions.add(first)
    revisions.add(other)
    assert revisions[1] is loaded  # the worker's own file: its catalog as it loaded it
    assert revisions[2] is not loaded
    assert revisions[2].wallets["acme"].name == "Acme 2"
    assert revisions.revision(2) == other  # its source kept compressed, given back whole


def test_a_revision_that_no_longer_loads_is_left_out(tmp_path: Path) -> None:
    broken = CatalogRevision(1, "00", "old.yaml", "zones: 1\n", "2026-11-30T12:00:00Z")
    newest = CatalogRevision(3, "01", "new.yaml", "zones: 1\n", "2026-11-30T12:00:00Z")
    revisions = _offline(broken, _renamed(tmp_path, 2), newest)
    assert (revisions.latest, revisions.built, list(revisions)) == (2, [2], [1, 2])
    assert 3 in revisions.failed and 3 not in revisions
    assert revisions.get(1) is None  # built when asked, and refused then
    assert 1 in revisions.failed and list(revisions) == [2] and len(revisions) == 1


def test_the_processor_lets_go_of_catalogs_no_wallet_is_on(tmp_path: Path) -> None:
    revisions = _offline(*(_renamed(tmp_path, n) for n in (1, 2, 3)))
    base = revisions[1]
    processor = RatingProcessor(base, revisions)
    processor.recover(0, [])
    firsts: dict[str, Cdr] = {}
    for line in generate_cdrs(base, 50, 400, seed=3, faults=0.0):
        cdr = msgspec.json.decode(line, type=Cdr)
        firsts.setdefault(wallet_of(base, {}, cdr.iccid, 0) or "", cdr)
    for offset, wallet in enumerate(("acme", "globex")):
        processor.decide(0, wallet, firsts[wallet], ("cdr.raw", 0, offset))
    assert revisions.built == [1, 3]  # the wallets' own, and the latest
    adopt = adopt_catalog("a-acme", 3, wallet="acme", at=2_000_000_000)
    assert processor.decide(0, "acme", adopt, ("wallet.commands", 0, 0)) is not None
    assert processor.retain() == [] and revisions.built == [1, 3]  # globex is on 1
    adopt = adopt_catalog("a-globex", 3, wallet="globex", at=2_000_000_000)
    assert processor.decide(0, "globex", adopt, ("wallet.commands", 0, 1)) is not None
    assert processor.retain() == [1] and revisions.built == [3]
    state = processor.partitions[0].wallets["acme"]
    assert state.revision == 3 and revisions[3].wallets["acme"].name == "Acme 3"
