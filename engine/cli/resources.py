"""The event store and the ClickHouse projections, opened for the length of one command.

A command that fails half-way still closes the store: a PostgreSQL connection left open
holds a server slot, and a SQLite store left open can keep its write lock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..store import EventStore, open_store
from .args import catalog

if TYPE_CHECKING:
    from ..projections.projector import Projector


@contextmanager
def opened_store(
    url: str, opener: Callable[[str], EventStore] = open_store
) -> Iterator[EventStore]:
    """The store at ``url``, opened by ``opener``, closed on exit however the block ends."""
    store = opener(url)
    try:
        yield store
    finally:
        store.close()


def projector(clickhouse: str, catalog_path: str | None) -> Projector:
    """A projector writing to ``clickhouse``, with the catalog's dimensions when given."""
    from ..projections.clickhouse import connect
    from ..projections.projector import Projector

    return Projector(connect(clickhouse), catalog(catalog_path) if catalog_path else None)
