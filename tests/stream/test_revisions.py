"""Catalog revisions on a real broker: published, read back, numbered, published once; the
worker's base revision (the live table of catalogs: test_live_catalogs.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from engine.catalog import CatalogError
from engine.stream.revisions import (
    CatalogRevision,
    base_revision,
    latest_revision,
    publish_revision,
    read_revisions,
    revision_of,
)
from engine.stream.topics import StreamError, Topics, load_topics

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"


@pytest.fixture
def topics(fresh_topics: Topics) -> Topics:
    return fresh_topics


def _variant(tmp_path: Path, name: str, wallet_name: str) -> Path:
    """The example catalog with one wallet renamed: another file, another digest."""
    path = tmp_path / name
    text = EXAMPLE.read_text(encoding="utf-8")
    old = "name: ACME Logistics (fleet telematics)"
    path.write_text(text.replace(old, f"name: {wallet_name}", 1))
    assert path.read_text() != text
    return path


# ---- pieces that need no broker ------------------------------------------------------------


def test_a_revision_is_the_files_text_and_the_sha256_of_its_bytes() -> None:
    revision = revision_of(EXAMPLE, 3, "2026-11-30T12:00:00Z")
    assert revision.digest == hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    assert revision.source.encode() == EXAMPLE.read_bytes()
    assert (revision.revision, revision.name, revision.label) == (
        3,
        "catalog.yaml",
        "revision 3 (catalog.yaml)",
    )
    assert set(revision.catalog().wallets) == {"acme", "globex", "initech", "umbrella"}


def test_a_revision_that_does_not_load_names_the_revision() -> None:
    broken = CatalogRevision(4, "00", "prices.yaml", "zones: 1\n", "2026-11-30T12:00:00Z")
    with pytest.raises(CatalogError) as raised:
        broken.catalog()
    assert all(issue.file == "revision 4 (prices.yaml)" for issue in raised.value.issues)


def test_revisions_need_a_broker_and_say_so() -> None:

    with pytest.raises(StreamError, match="no Kafka broker answered"):
        latest_revision("127.0.0.1:1", load_topics())


# ---- against a real broker -----------------------------------------------------------------


def test_publish_read_and_latest(kafka_bootstrap: str, topics: Topics, tmp_path: Path) -> None:
    assert latest_revision(kafka_bootstrap, topics) == 0
    assert read_revisions(kafka_bootstrap, topics) == {}
    first = revision_of(EXAMPLE, 1)
    second = revision_of(_variant(tmp_path, "prices.yaml", "Acme Two"), 2)
    assert publish_revision(kafka_bootstrap, topics, first) is True
    assert publish_revision(kafka_bootstrap, topics, second) is True
    assert latest_revision(kafka_bootstrap, topics) == 2
    assert read_revisions(kafka_bootstrap, topics) == {1: first, 2: second}


def test_publishing_a_revision_again_sends_nothing_and_a_taken_number_is_refused(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    first = revision_of(EXAMPLE, 1)
    assert publish_revision(kafka_bootstrap, topics, first)
    again = revision_of(EXAMPLE, 1, "2027-01-01T00:00:00Z")  # same bytes, later
    assert publish_revision(kafka_bootstrap, topics, again) is False
    assert read_revisions(kafka_bootstrap, topics) == {1: first}
    other = revision_of(_variant(tmp_path, "other.yaml", "Acme Other"), 1)
    with pytest.raises(StreamError, match=r"revision 1 is already published from catalog\.yaml"):
        publish_revision(kafka_bootstrap, topics, other)


def test_a_workers_file_becomes_revision_1_on_an_empty_topic(
    kafka_bootstrap: str, topics: Topics
) -> None:
    assert base_revision(kafka_bootstrap, topics, EXAMPLE) == 1
    [(number, revision)] = read_revisions(kafka_bootstrap, topics).items()
    assert (number, revision.digest) == (1, hashlib.sha256(EXAMPLE.read_bytes()).hexdigest())
    # A second worker with the same file stands on the same revision; nothing is added.
    assert base_revision(kafka_bootstrap, topics, EXAMPLE) == 1
    assert list(read_revisions(kafka_bootstrap, topics)) == [1]


def test_a_worker_with_a_file_never_published_is_refused(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    publish_revision(kafka_bootstrap, topics, revision_of(EXAMPLE, 1))
    later = _variant(tmp_path, "later.yaml", "Acme Later")
    publish_revision(kafka_bootstrap, topics, revision_of(later, 2))
    assert base_revision(kafka_bootstrap, topics, EXAMPLE) == 1  # an older one is fine
    foreign = _variant(tmp_path, "foreign.yaml", "Acme Foreign")
    with pytest.raises(StreamError) as raised:
        base_revision(kafka_bootstrap, topics, foreign)
    message = str(raised.value)
    assert f"{foreign} is not a published revision" in message
    assert f"publish it with `rating-engine catalog publish {foreign}`" in message
    assert "revision 2 (later.yaml)" in message


def test_the_worker_command_refuses_a_foreign_file_before_it_runs(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine import cli

    publish_revision(kafka_bootstrap, topics, revision_of(EXAMPLE, 1))
    foreign = _variant(tmp_path, "foreign.yaml", "Acme Foreign")
    argv = ["worker", "--catalog", str(foreign), "--bootstrap", kafka_bootstrap]
    assert cli.main([*argv, "--data-dir", str(tmp_path / "data")]) == 1
    err = capsys.readouterr().err
    assert f"{foreign} is not a published revision" in err
    assert "publish it with `rating-engine catalog publish" in err and "Traceback" not in err
    assert not (tmp_path / "data").exists()  # refused before the worker made anything
