"""The hash chain of each wallet's stream, and the walk that checks it.

Each event's hash is sha256 over the previous hash of its stream (64 zeros for the first),
then its id and version as a JSON array, then its payload bytes; the array is
self-delimiting, so no two different (id, version, payload) feed the hash the same bytes.
Rows also keep the previous hash they were chained to, so that the walk can tell a row
changed in place (its own hash no longer matches) from a link broken between rows.

With a key (``RATING_CHAIN_KEY`` or ``RATING_CHAIN_KEY_FILE``, see ``chain_key``) the hash
is HMAC-SHA256 over the same bytes, written ``hmac-sha256:<hex>``. Without the key nobody can
make a keyed hash, so an edited event re-chained by someone with write access to the
database (its hash and every later one recomputed) no longer verifies: a plain sha256 chain
alone only catches accidents. A keyed walk reports every unkeyed link as ``unkeyed``, except
those at positions up to ``unkeyed_until``: the events a store held before its key was set.
Once a stream has a keyed link, an unkeyed one after it is reported (``downgraded``), key or
not. Without the key, a keyed stream is reported once (``keyed``), never called intact.

The walk is pure: backends read rows and heads, and ``verify`` turns them into problems.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from itertools import groupby
from typing import NamedTuple

from ..codec import encode
from ..secrets import CHAIN_KEY, SecretError, secret
from .base import Problem, StoreError

GENESIS = "0" * 64
KEYED = "hmac-sha256:"
MIN_KEY_BYTES = 32


def link(
    prev_hash: str, event_id: str, version: int, payload: bytes, key: bytes | None = None
) -> str:
    """The hash of one event chained after ``prev_hash``: keyed (``hmac-sha256:...``) when
    ``key`` is given, a plain sha256 hex digest otherwise."""
    h = hmac.new(key, digestmod=hashlib.sha256) if key else hashlib.sha256()
    h.update(prev_hash.encode("ascii"))
    h.update(encode([event_id, version]))
    h.update(payload)
    return KEYED + h.hexdigest() if key else h.hexdigest()


def is_keyed(digest: str) -> bool:
    return digest.startswith(KEYED)


def chain_key(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The chain's HMAC key from ``RATING_CHAIN_KEY`` or ``RATING_CHAIN_KEY_FILE``; None when
    neither is set. A key shorter than 32 bytes is refused."""
    try:
        value = secret(CHAIN_KEY, environ)
    except SecretError as exc:
        raise StoreError(str(exc)) from None
    if value is None:
        return None
    key = value.encode("utf-8")
    if len(key) < MIN_KEY_BYTES:
        raise StoreError(
            f"the chain key has {len(key)} bytes; use at least {MIN_KEY_BYTES} random bytes "
            "(e.g. openssl rand -hex 32)"
        )
    return key


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


Found = tuple[int, str, str, str]
"""(version, event id, kind, detail): a problem of a stream not yet named."""


def verify_stream(
    wallet_id: str,
    rows: Iterable[ChainRow],
    head: Head | None,
    key: bytes | None = None,
    unkeyed_until: int = 0,
) -> list[Problem]:
    """Problems of one stream; ``rows`` in version order, ``head`` from the heads table."""
    found: list[Found] = []
    expected, prev_hash, prev_position, keyed_before = 1, GENESIS, 0, False
    for row in rows:
        keyed = is_keyed(row.hash)
        found += _key_problems(row, keyed, keyed_before, key, unkeyed_until)
        keyed_before = keyed_before or keyed
        # A keyed hash without the key cannot be told either way; _key_problems said so.
        intact = (keyed and key is None) or _intact(row, key if keyed else None)
        found += _link_problems(row, expected, prev_hash, prev_position, intact)
        expected, prev_hash, prev_position = row.version + 1, row.hash, row.position
    if head is not None:
        found += _head_problems(head, expected - 1, prev_hash)
    return [Problem(wallet_id, *f) for f in found]


def _key_problems(
    row: ChainRow, keyed: bool, keyed_before: bool, key: bytes | None, unkeyed_until: int
) -> list[Found]:
    """Whether the row is keyed as the stream and the key say it should be."""
    if keyed and key is None:
        if keyed_before:  # once per stream: nothing of it can be checked
            return []
        detail = "the chain is keyed: set RATING_CHAIN_KEY or RATING_CHAIN_KEY_FILE to verify it"
        return [(row.version, row.event_id, "keyed", detail)]
    if not keyed and keyed_before:
        detail = (
            f"unkeyed hash at position {row.position} after keyed ones: re-chained without the key"
        )
        return [(row.version, row.event_id, "downgraded", detail)]
    if not keyed and key is not None and row.position > unkeyed_until:
        detail = (
            f"unkeyed hash at position {row.position}: re-chained without the key, or "
            "stored before the key was set (then verify with --unkeyed-until)"
        )
        return [(row.version, row.event_id, "unkeyed", detail)]
    return []


def _intact(row: ChainRow, key: bytes | None) -> bool:
    digest = link(row.prev_hash, row.event_id, row.version, row.payload, key)
    return hmac.compare_digest(digest, row.hash)


def _link_problems(
    row: ChainRow, expected: int, prev_hash: str, prev_position: int, intact: bool
) -> list[Found]:
    """The row against the one before it: its position, its own hash, its link."""
    found: list[Found] = []
    if row.position < prev_position:
        detail = (
            f"version {row.version} is at position {row.position}, before version "
            f"{expected - 1} at position {prev_position}"
        )
        found.append((row.version, row.event_id, "reordered", detail))
    if not intact:
        detail = f"hash mismatch at position {row.position}: its id, version or payload changed"
        found.append((row.version, row.event_id, "altered", detail))
    if row.version > expected:
        detail = (
            f"versions {expected}..{row.version - 1} are missing before {row.event_id}"
            if row.version - expected > 1
            else f"version {expected} is missing before {row.event_id}"
        )
        found.append((expected, "", "missing", detail))
    elif intact and row.prev_hash != prev_hash:
        detail = (
            f"does not link to version {row.version - 1}: chained after another event "
            "(moved, or the event before it was replaced)"
        )
        found.append((row.version, row.event_id, "reordered", detail))
    return found


def _head_problems(head: Head, last: int, last_hash: str) -> list[Found]:
    """The stored events against the head the appenders left."""
    if head.version > last:
        detail = f"the stream's head is version {head.version}; stored events end at {last}"
        return [(last + 1, "", "missing", detail)]
    if head.version == last and head.hash != last_hash:
        return [(last, "", "altered", f"version {last} differs from the stream's head hash")]
    return []


def verify(
    rows: Iterable[ChainRow],
    heads: Mapping[str, Head],
    key: bytes | None = None,
    unkeyed_until: int = 0,
) -> list[Problem]:
    """Every stream's problems; ``rows`` ordered by wallet, then version."""
    problems: list[Problem] = []
    seen: set[str] = set()
    for wallet_id, stream in groupby(rows, key=lambda r: r.wallet_id):
        seen.add(wallet_id)
        problems += verify_stream(wallet_id, stream, heads.get(wallet_id), key, unkeyed_until)
    for wallet_id in sorted(heads.keys() - seen):
        problems += verify_stream(wallet_id, (), heads[wallet_id], key, unkeyed_until)
    return problems
