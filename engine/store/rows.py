"""What a batch becomes before either backend writes it: chained event rows, input rows.

Both backends call these inside their write transaction, after reading the stream heads
and the ids already stored, so versions and hashes follow what is really in the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

from ..codec import encode, tag
from ..domain import Cdr, Command, Event
from .chain import EMPTY, Head, link


class EventRow(NamedTuple):
    """One ``events`` row, fields in the table's column order."""

    position: int
    event_id: str
    wallet_id: str
    version: int
    type: str
    at: datetime
    payload: bytes
    prev_hash: str
    hash: str


class InputRow(NamedTuple):
    wallet_id: str
    key: str
    at: datetime
    payload: bytes


def first_of_each(events: Iterable[Event]) -> list[Event]:
    """The events in order, each id once (its first occurrence)."""
    seen: set[str] = set()
    out: list[Event] = []
    for e in events:
        if e.id not in seen:
            seen.add(e.id)
            out.append(e)
    return out


def event_type(event: Event) -> str:
    cls = type(event)
    name = _TAGS.get(cls)
    if name is None:
        name = _TAGS[cls] = tag(cls)
    return name


_TAGS: dict[type, str] = {}
"""Each event class's tag, looked up once: ``tag`` reads it from the class's config."""


def chain_events(
    new: Sequence[Event], heads: dict[str, Head], after: int, key: bytes | None = None
) -> list[EventRow]:
    """Rows for events not yet stored, positioned after ``after``; moves ``heads`` along.
    With ``key``, each hash is keyed (``chain.link``)."""
    rows: list[EventRow] = []
    # The rows and heads are built as the tuples they are (``tuple.__new__``): a named
    # tuple's own constructor is a Python function, a sizeable part of an append's work.
    make = tuple.__new__
    for position, event in enumerate(new, start=after + 1):
        wallet_id, event_id = event.wallet_id, event.id
        head = heads.get(wallet_id, EMPTY)
        payload = encode(event)
        version = head.version + 1
        digest = link(head.hash, event_id, version, payload, key)
        fields = (position, event_id, wallet_id, version, event_type(event), event.at)
        rows.append(make(EventRow, (*fields, payload, head.hash, digest)))
        heads[wallet_id] = make(Head, (version, digest))
    return rows


def input_at(item: Cdr | Command) -> datetime:
    return item.started_at if isinstance(item, Cdr) else item.at


def input_rows(inputs: Iterable[tuple[str, Cdr | Command]]) -> list[InputRow]:
    """One row per (wallet, key), the first occurrence in the batch."""
    seen: set[tuple[str, str]] = set()
    rows: list[InputRow] = []
    make = tuple.__new__
    for wallet_id, item in inputs:
        key = item.key
        if (wallet_id, key) not in seen:
            seen.add((wallet_id, key))
            rows.append(make(InputRow, (wallet_id, key, input_at(item), encode(item))))
    return rows
