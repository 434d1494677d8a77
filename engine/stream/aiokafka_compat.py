"""Every place the engine reaches into aiokafka's private API (the client under Faust's
consumer), in one module, for one version range (`AIOKAFKA`):

- `FollowingRecords`: each record aiokafka fetches says from which offset the log holds
  no committed record before it (``follows``), so `Positions` knows a gap the consumer
  passed over itself (a transaction's marker, an aborted record) from one it never
  delivered (``PartitionRecords._unpack_records``, ``next_fetch_offset``).
- `GatheringFetcher`: while records flow, each fetch asks the broker to gather some before
  it answers; an idle consumer long-polls as configured (``Fetcher``,
  ``_proc_fetch_request``, ``_get_actions_per_node``, ``_records``, ``_fetch_min_bytes``,
  ``_fetch_max_wait_ms``).

aiokafka builds both by their modules' names, with no hook: importing this module points
those names here (`install_aiokafka_overrides`), for every aiokafka consumer in the process
(only Faust's uses aiokafka in a worker; faust_compat.py imports this module). Each is
pinned by tests/stream/test_following.py and test_gathering.py, on a real broker.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import version
from typing import Any, ClassVar

from aiokafka.consumer import consumer as aiokafka_consumer
from aiokafka.consumer import fetcher as aiokafka_fetcher

from .versions import check_version

AIOKAFKA = ((0, 14, 0), (0, 14, 1))
"""aiokafka versions the overrides hold for: from the first, up to (excluding) the second
(pyproject.toml pins the first)."""

GATHER = (32 * 1024, 10)
"""``fetch.min.bytes`` and ``fetch.max.wait.ms`` of a fetch that follows one which brought
records: the broker answers once 32 KiB (about 170 CDRs) are there, or after 10 ms."""


check_version(version("aiokafka"), "aiokafka", AIOKAFKA, __name__)


class FollowingRecords(aiokafka_fetcher.PartitionRecords):
    """aiokafka's records of one partition from one fetch, each marked with ``follows``:
    the lowest offset from which the log holds no committed record before this one. The
    offsets in between are ones a fetch passed over itself (a transaction's marker, an
    aborted record, one compacted away), seen in this fetch or, when this fetch starts
    where the last of the partition ended, in that one's tail (a fetch of markers alone
    yields no record, yet moves the consumer on). So ``follows`` is a fact about the log,
    whatever the consumer's position did: a record fetched and not handed to the streams,
    or a seek past records never fetched, leaves a gap before a later record's
    ``follows``, and `Positions` reads back just those gaps.

    aiokafka builds these by the module's name, so `install_aiokafka_overrides` points that
    name here: every aiokafka consumer in the process then marks its records (only Faust's
    consumer uses aiokafka in a worker).
    """

    _tails: ClassVar[dict[Any, tuple[int, int]]] = {}
    """Per ``(topic, partition)``, the offsets ``[start, end)`` the last fetch that was read
    to its end passed over after its last record: one entry per partition, dropped when
    the partition is revoked (`forget`)."""

    @classmethod
    def forget(cls, tps: Iterable[tuple[str, int]]) -> None:
        """Partitions revoked: the next fetch of each follows from its own start. A tail is
        a fact about the log, but a topic deleted and made again under the same name starts
        a new log, and its deletion revokes its partitions."""
        for tp in tps:
            cls._tails.pop(tuple(tp), None)

    def _unpack_records(self) -> Any:
        records = super()._unpack_records()
        tp, tails = self._tp, self._tails
        # Before each step, the offset the fetch has reached; the step passes over markers
        # and aborted batches, and yields the next record.
        follows = self.next_fetch_offset
        tail = tails.get(tp)
        if tail is not None and tail[1] == follows:
            follows = tail[0]
        while True:
            record = next(records, None)
            if record is None:
                tails[tp] = (follows, self.next_fetch_offset)
                return
            record.follows = follows
            yield record
            follows = self.next_fetch_offset


class GatheringFetcher(aiokafka_fetcher.Fetcher):
    """aiokafka's fetcher, which asks the broker to gather records while they flow.

    A fetch asks for at least ``fetch.min.bytes`` and waits at most ``fetch.max.wait.ms``
    for them. Faust's consumer asks for one byte and waits up to 1.5 s: an idle worker
    long-polls, but under a steady trickle every fetch returns with the first record to
    reach any of the worker's input partitions, hundreds of fetches a second, each one
    built, parsed and handed over in Python (a quarter of a core at 3,500 CDRs/s,
    docs/performance.md, "Fetches that gather"). So a fetch that brought records is
    followed by one that waits for `GATHER` (32 KiB or 10 ms), and a fetch that brought
    none by one with the consumer's own settings: idle stays a long poll, and no record
    waits more than 10 ms longer for its fetch. A fetch built while other partitions'
    records wait to be consumed gathers too, whatever the fetch before it brought.
    """

    _fetch_min_bytes: int
    _fetch_max_wait_ms: int
    _records: dict[Any, Any]
    """aiokafka's records fetched and not yet consumed, by partition."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._idle = (self._fetch_min_bytes, self._fetch_max_wait_ms)
        self._brought = False
        """Whether the last fetch answered held records of at least one partition."""

    def _get_actions_per_node(self, assignment: Any) -> Any:
        # The one place a fetch's settings are chosen, as aiokafka builds it. A fetch
        # leaves out the partitions whose records still wait to be consumed, and none of
        # them is fetched again until it is answered: built then, it gathers, or a long
        # poll on the other (empty) partitions held the ones being read for up to 1.5 s
        # (docs/performance.md, "A long poll that held the partitions being read").
        gather = self._brought or bool(self._records)
        self._fetch_min_bytes, self._fetch_max_wait_ms = GATHER if gather else self._idle
        return super()._get_actions_per_node(assignment)

    async def _proc_fetch_request(self, assignment: Any, node_id: int, request: Any) -> bool:
        # True: the response held records of at least one partition.
        self._brought = await super()._proc_fetch_request(assignment, node_id, request)
        return self._brought


def install_aiokafka_overrides() -> None:
    """Have aiokafka's consumer build a `GatheringFetcher`, and its fetcher build
    `FollowingRecords` (idempotent)."""
    aiokafka_fetcher.PartitionRecords = FollowingRecords
    aiokafka_consumer.Fetcher = GatheringFetcher


install_aiokafka_overrides()
