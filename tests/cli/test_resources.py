"""The one way a command opens the event store: closed however the command ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from engine.cli.resources import opened_store
from engine.store import EventStore, StoreError


class _Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def test_the_store_is_closed_after_the_block() -> None:
    opened: list[_Store] = []

    def opener(url: str) -> EventStore:
        opened.append(_Store(url))
        return cast(EventStore, opened[-1])

    with opened_store("sqlite:///x.db", opener) as store:
        assert cast(Any, store).closed == 0
    assert [(s.url, s.closed) for s in opened] == [("sqlite:///x.db", 1)]


def test_the_store_is_closed_when_the_command_fails() -> None:
    fake = _Store("u")
    with (
        pytest.raises(RuntimeError, match="half-way"),
        opened_store("u", lambda _: cast(EventStore, fake)),
    ):
        raise RuntimeError("half-way")
    assert fake.closed == 1


def test_a_store_that_cannot_be_opened_is_not_closed() -> None:
    def opener(url: str) -> EventStore:
        raise StoreError(f"no store at {url}")

    with pytest.raises(StoreError, match="no store at u"), opened_store("u", opener):
        pytest.fail("the block runs only with an open store")


def test_by_default_the_url_picks_the_backend(tmp_path: Path) -> None:
    with opened_store(f"sqlite:///{tmp_path / 'events.db'}") as store:
        assert store.stats().events == 0
    with pytest.raises(StoreError, match="unknown event store URL"), opened_store("mysql://x"):
        pass
