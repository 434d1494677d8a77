"""The records on ``cdr.by-wallet``: CDRs already validated and routed, grouped per wallet.

Enrich writes one record per wallet partition and ``cdr.raw`` partition of each batch, not
one per CDR: a record costs the same per-record work in every Kafka client whatever its
size, and that work, not the rating, dominated the worker. Each CDR keeps its wallet, its
origin (the ``cdr.raw`` offset) and its arrival time, so the rating agent still decides and
recognises every CDR on its own. One record holds every wallet of its partition (not one
record per wallet) so that the CDRs of one ``cdr.raw`` partition reach a wallet partition in
offset order: that order is what lets the rating agent recognise a redelivered CDR by its
offset alone. The CDRs travel as the bytes the operator sent (``msgspec.Raw``, not re-encoded)
and are decoded straight into the domain's ``Cdr`` on the rating side.
"""

from __future__ import annotations

from collections.abc import Sized
from typing import cast

import msgspec
from aiokafka.partitioner import murmur2

from ..codec import UncheckedCdr, checked_cdr, typed_cdr
from ..domain import Cdr

MAX_RECORD_BYTES = 512 * 1024
"""A group of CDRs larger than this is split over several records (Kafka's default limit
for one record is about 1 MiB)."""


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as in every producer here) gives
    ``key``: where a wallet's records go."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class RoutedCdrs(msgspec.Struct, gc=False):
    """CDRs of one wallet partition from one ``cdr.raw`` partition, in offset order, as
    `decode_routed` reads them (the record on the wire is `_RoutedRaw`)."""

    partition: int
    """The ``cdr.raw`` partition they came from."""
    wallets: list[str]
    """Each CDR's wallet."""
    offsets: list[int]
    """Each CDR's ``cdr.raw`` offset: its origin, how redelivery is recognised."""
    ingested: list[int]
    """Each CDR's ``cdr.raw`` timestamp (epoch milliseconds), for the latency histogram."""
    cdrs: list[Cdr]


class _RoutedRaw(msgspec.Struct, array_like=True, gc=False):
    """A ``cdr.by-wallet`` record on the wire: `RoutedCdrs` with the CDRs as their original
    JSON bytes, which the reader then decodes each as the codec does (``typed_cdr``)."""

    partition: int
    wallets: list[str]
    offsets: list[int]
    ingested: list[int]
    cdrs: list[msgspec.Raw]


class _RoutedUnchecked(msgspec.Struct, array_like=True, gc=False):
    """`_RoutedRaw` with its CDRs decoded in the same call, as the codec's fast path does
    (``UncheckedCdr``): one decode per record instead of one per CDR."""

    partition: int
    wallets: list[str]
    offsets: list[int]
    ingested: list[int]
    cdrs: list[UncheckedCdr]


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_RoutedRaw)
_unchecked_decoder = msgspec.json.Decoder(_RoutedUnchecked)


class RoutedGroup:
    """CDRs collected for one record while a batch is enriched."""

    __slots__ = ("cdrs", "ingested", "offsets", "partition", "size", "wallets")

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.wallets: list[str] = []
        self.offsets: list[int] = []
        self.ingested: list[int] = []
        self.cdrs: list[msgspec.Raw] = []
        self.size = 0

    def add(self, wallet: str, offset: int, ingested_ms: int, raw: bytes) -> None:
        self.wallets.append(wallet)
        self.offsets.append(offset)
        self.ingested.append(ingested_ms)
        self.cdrs.append(msgspec.Raw(raw))
        self.size += len(raw) + len(wallet) + 24

    def full(self) -> bool:
        return self.size >= MAX_RECORD_BYTES

    def encode(self) -> bytes:
        return _encoder.encode(
            _RoutedRaw(self.partition, self.wallets, self.offsets, self.ingested, self.cdrs)
        )


def decode_routed(raw: bytes) -> RoutedCdrs:
    """A routed record; raises ``msgspec.ValidationError`` when its lists do not line up
    (only a record enrich did not write can), as when it does not decode."""
    fast = _checked_at_once(raw)
    if fast is not None:
        return fast
    routed = _decoder.decode(raw)
    _check_lengths(routed.wallets, routed.offsets, routed.ingested, routed.cdrs)
    # Each CDR by the codec's own decoder, not as a ``list[Cdr]`` field: that would check
    # ``Cdr``'s patterns by regular expression, twice the cost of the whole decode here.
    cdrs = [typed_cdr(cdr) for cdr in routed.cdrs]
    return RoutedCdrs(routed.partition, routed.wallets, routed.offsets, routed.ingested, cdrs)


def _checked_at_once(raw: bytes) -> RoutedCdrs | None:
    """The record with all its CDRs decoded in one call and cleared by the codec's string
    tests (``checked_cdr``): what the CDR-by-CDR path gives, for a record enrich wrote.
    ``None`` when a CDR does not decode so or is not cleared: that path then says what
    its typed decoder says."""
    try:
        routed = _unchecked_decoder.decode(raw)
    except msgspec.MsgspecError:
        return None
    found = [checked_cdr(c) for c in routed.cdrs]
    if None in found:
        return None
    cdrs = cast(list[Cdr], found)
    _check_lengths(routed.wallets, routed.offsets, routed.ingested, cdrs)
    return RoutedCdrs(routed.partition, routed.wallets, routed.offsets, routed.ingested, cdrs)


def _check_lengths(*columns: Sized) -> None:
    """A record's columns (wallets, offsets, arrivals, CDRs) hold one entry per CDR each."""
    if len({len(column) for column in columns}) > 1:
        raise msgspec.ValidationError("wallets, offsets, ingested and cdrs differ in length")
