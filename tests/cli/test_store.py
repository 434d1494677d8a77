"""``rating-engine store verify|stats|anchor|revisions`` on their own: the flags checked before the
store is opened, and the verdict an operator reads. (Against filled and tampered stores of
both backends: tests/store/test_cli.py and test_keyed_chain.py.)"""

from __future__ import annotations

import hashlib
import json
from contextlib import closing
from pathlib import Path

import pytest

from engine.cli import store
from engine.cli.args import UsageError
from engine.store import StoredRevision, open_store

from .parsing import run


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("RATING_CHAIN_KEY", raising=False)
    monkeypatch.delenv("RATING_CHAIN_KEY_FILE", raising=False)
    return f"sqlite:///{tmp_path / 'events.db'}"


def test_an_empty_store_is_intact(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(store, "store", "verify", "--store", url) == 0
    assert capsys.readouterr().out == "0 events in 0 streams, intact\n"
    assert run(store, "store", "verify", "--store", url, "--json") == 0
    assert json.loads(capsys.readouterr().out) == {
        "ok": True,
        "events": 0,
        "streams": 0,
        "problems": [],
    }


def test_a_negative_position_or_a_missing_anchor_is_a_usage_error(url: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--unkeyed-until must be >= 0"):
        run(store, "store", "verify", "--store", url, "--unkeyed-until", "-1")
    missing = tmp_path / "anchor.json"
    with pytest.raises(UsageError, match=f"--anchor {missing}"):
        run(store, "store", "verify", "--store", url, "--anchor", str(missing))


def test_an_anchor_taken_then_checked(url: str, tmp_path: Path) -> None:
    anchor = tmp_path / "anchor.json"
    assert run(store, "store", "anchor", "--store", url, "--out", str(anchor)) == 0
    assert json.loads(anchor.read_text())["heads"] == {}
    assert run(store, "store", "verify", "--store", url, "--anchor", str(anchor)) == 0


def test_the_kept_catalog_revisions_are_listed_and_their_sources_printed(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(store, "store", "revisions", "--store", url) == 0
    assert capsys.readouterr().out == "no catalog revisions stored\n"
    with closing(open_store(url)) as opened:
        for n, name in ((1, "catalog.yaml"), (2, "prices.yaml")):
            source = f"# {name}\nproviders: []\n"
            digest = hashlib.sha256(source.encode()).hexdigest()
            opened.put_revision(StoredRevision(n, digest, name, source, "2026-11-30T12:00:00Z"))
    assert run(store, "store", "revisions", "--store", url) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0::3] for line in lines] == [["1", "catalog.yaml"], ["2", "prices.yaml"]]
    assert run(store, "store", "revisions", "--store", url, "--source", "2") == 0
    assert capsys.readouterr().out == "# prices.yaml\nproviders: []\n"
    assert run(store, "store", "revisions", "--store", url, "--json") == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == [
        "catalog.yaml",
        "prices.yaml",
    ]
    with pytest.raises(UsageError, match="--source 3: no such revision"):
        run(store, "store", "revisions", "--store", url, "--source", "3")
