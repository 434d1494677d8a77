"""The hash chain of each wallet's stream, and the walk that checks it.

Each event's hash is sha256 over the previous hash of its stream (64 zeros for the first),
then its id and version as a JSON array, then its payload bytes; the array is
self-delimiting, so no two different (id, version, payload) feed the hash the same bytes.
Rows also keep the previous hash they were chained to, so that the walk can tell a row
changed in place (its own hash no longer matches) from a link broken between rows.

The walk is pure: backends read rows and heads, and ``verify`` turns them into problems.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from itertools import groupby
from typing import NamedTuple

from ..codec import encode
from .base import Problem

GENESIS = "0" * 64


def link(prev_hash: str, event_id: str, version: int, payload: bytes) -> str:
    """The hash of one event chained after ``prev_hash``."""
    h = hashlib.sha256(prev_hash.encode("ascii"))
    h.update(encode([event_id, version]))
    h.update(payload)
    return h.hexdigest()


class Head(NamedTuple):
    """A stream's last version and hash, as the appenders left it."""

    version: int
    hash: str


EMPTY = Head(0, GENESIS)


class ChainRow(NamedTuple):
    """What the walk needs of one stored event."""

    position: int
    wallet_id: str
    version: int
    event_id: str
    payload: bytes
    prev_hash: str
    hash: str


def verify_stream(wallet_id: str, rows: Iterable[ChainRow], head: Head | None) -> list[Problem]:
    """Problems of one stream; ``rows`` in version order, ``head`` from the heads table."""
    problems: list[Problem] = []

    def problem(row_version: int, event_id: str, kind: str, detail: str) -> None:
        problems.append(Problem(wallet_id, row_version, event_id, kind, detail))

    expected, prev_hash, prev_position = 1, GENESIS, 0
    for row in rows:
        if row.position < prev_position:
            problem(
                row.version,
                row.event_id,
                "reordered",
                f"version {row.version} is at position {row.position}, before version "
                f"{expected - 1} at position {prev_position}",
            )
        intact = link(row.prev_hash, row.event_id, row.version, row.payload) == row.hash
        if not intact:
            problem(
                row.version,
                row.event_id,
                "altered",
                f"hash mismatch at position {row.position}: its id, version or payload changed",
            )
        if row.version > expected:
            problem(
                expected,
                "",
                "missing",
                f"versions {expected}..{row.version - 1} are missing before {row.event_id}"
                if row.version - expected > 1
                else f"version {expected} is missing before {row.event_id}",
            )
        elif intact and row.prev_hash != prev_hash:
            problem(
                row.version,
                row.event_id,
                "reordered",
                f"does not link to version {row.version - 1}: chained after another event "
                "(moved, or the event before it was replaced)",
            )
        expected, prev_hash, prev_position = row.version + 1, row.hash, row.position
    if head is not None:
        last = expected - 1
        if head.version > last:
            problem(
                last + 1,
                "",
                "missing",
                f"the stream's head is version {head.version}; stored events end at {last}",
            )
        elif head.version == last and head.hash != prev_hash:
            problem(last, "", "altered", f"version {last} differs from the stream's head hash")
    return problems


def verify(rows: Iterable[ChainRow], heads: Mapping[str, Head]) -> list[Problem]:
    """Every stream's problems; ``rows`` ordered by wallet, then version."""
    problems: list[Problem] = []
    seen: set[str] = set()
    for wallet_id, stream in groupby(rows, key=lambda r: r.wallet_id):
        seen.add(wallet_id)
        problems += verify_stream(wallet_id, stream, heads.get(wallet_id))
    for wallet_id in sorted(heads.keys() - seen):
        problems += verify_stream(wallet_id, (), heads[wallet_id])
    return problems
