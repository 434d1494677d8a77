"""The rating processor: the pure decider behind a Kafka partition, with exact recovery.

It is the part of the worker that knows no Faust. Each wallet partition keeps its wallets'
states and, per origin partition, the offset of the last input already decided. Both are
rebuilt from ``wallet.events`` alone, so after a crash the worker knows exactly which inputs
it answered and skips them when Kafka delivers them again: nothing is charged twice, and
nothing is lost, because input offsets are only committed once the decisions are durable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, NamedTuple

from ..domain import Catalog, Cdr, Command, WalletState, evolve, initial_state
from ..domain.decision import Decision, Origin
from ..flow import MissingRevision, Revisions, admit, decide, pick, revision_for
from .positions import TopicPartition

if TYPE_CHECKING:
    from .chunks import Layout

REORDER_WINDOW = 20_000
"""How far below the highest decided offset of an origin partition inputs may still arrive.

A wallet partition normally sees each origin partition's offsets in increasing order, but
not always: when a ``cdr.raw`` partition changes owner, the old owner's last output can land
while its inputs stay uncommitted, and the new owner's output for the earlier offsets lands
after it. So the offsets decided within this window are kept one by one (and snapshotted);
only below it does "at most the highest" mean "decided"."""


_PRUNE_AT = 2 * REORDER_WINDOW


def decision_id(decision: Decision) -> str:
    """What names a decision in its partition: the input it answers (each input is decided
    once per partition), e.g. ``cdr.raw/0@1234``."""
    return f"{decision.origin_topic}/{decision.origin_partition}@{decision.origin_offset}"


class PartitionState:
    """What one wallet partition has decided so far."""

    __slots__ = ("decided", "events_offset", "last_decision", "recent", "wallets")

    def __init__(
        self,
        wallets: dict[str, WalletState] | None = None,
        decided: dict[TopicPartition, int] | None = None,
        events_offset: int = -1,
        recent: dict[TopicPartition, set[int]] | None = None,
        last_decision: str = "",
    ) -> None:
        self.wallets: dict[str, WalletState] = wallets or {}
        self.decided: dict[TopicPartition, int] = decided or {}
        """The highest offset decided per origin partition."""
        self.recent: dict[TopicPartition, set[int]] = recent or {}
        """The offsets decided within ``REORDER_WINDOW`` of the highest, per origin partition."""
        self.events_offset = events_offset
        """The last ``wallet.events`` offset this state includes."""
        self.last_decision = last_decision
        """The `decision_id` of the decision at ``events_offset``: a snapshot names it, so
        recovery can check the snapshot against the log before trusting it."""

    def apply(self, decision: Decision) -> None:
        """Fold a decision read back from ``wallet.events`` (recovery)."""
        topic, partition = decision.origin_topic, decision.origin_partition
        if self.seen(topic, partition, decision.origin_offset):
            return  # a record written twice by a retried produce: already folded
        state = self.wallets.get(decision.wallet_id) or initial_state(decision.wallet_id)
        for event in decision.events:
            state = evolve(state, event)
        self.wallets[decision.wallet_id] = state
        self.mark(topic, partition, decision.origin_offset)

    def seen(self, topic: str, partition: int, offset: int) -> bool:
        key = (topic, partition)
        top = self.decided.get(key, -1)
        if offset > top:
            return False
        if offset <= top - REORDER_WINDOW:
            return True
        recent = self.recent.get(key)
        return recent is not None and offset in recent

    def mark(self, topic: str, partition: int, offset: int) -> None:
        """Record ``offset`` of an origin partition as decided."""
        key = (topic, partition)
        recent = self.recent.get(key)
        if recent is None:
            recent = self.recent[key] = set()
        recent.add(offset)
        decided = self.decided
        if offset > decided.get(key, -1):
            decided[key] = offset
        # Offsets at or below the floor are answered by ``seen`` without the set, so they
        # may linger: pruning only at twice the window keeps its cost at O(1) per offset
        # (pruning at the window itself would walk the whole set on every offset once full).
        if len(recent) > _PRUNE_AT:
            floor = decided[key] - REORDER_WINDOW
            self.recent[key] = {o for o in recent if o > floor}


def rebuild(
    decisions: Iterable[tuple[int, Decision]], snapshot: PartitionState | None = None
) -> tuple[PartitionState, int]:
    """A partition's state from a snapshot (if any) and the decisions on ``wallet.events``
    after it, with how many decisions were folded."""
    state = snapshot or PartitionState()
    count = 0
    for offset, decision in decisions:
        if offset <= state.events_offset:
            continue
        state.apply(decision)
        state.events_offset = offset
        state.last_decision = decision_id(decision)
        count += 1
    return state, count


class Written(NamedTuple):
    """What the snapshot records of an epoch hold: its id, and each wallet's state as its
    latest record of the epoch has it."""

    epoch: str
    wallets: dict[str, WalletState]
    layouts: dict[str, Layout]
    """Each wallet's chunks as read, where they are those its state as read is chunked
    into (chunks.read_layout): a snapshot keeps those its state still holds."""


class Recovered(NamedTuple):
    state: PartitionState
    decisions: int
    """How many decisions were folded from ``wallet.events``."""
    source: str
    """``snapshot`` (verified), ``no snapshot``, or ``mismatch`` (a snapshot whose decision
    is not at its offset of the log: not trusted, the whole partition was replayed)."""
    written: Written | None = None
    """For a verified, whole snapshot: its epoch and each wallet's state as read from it
    (before the log after it was folded), so the owner's snapshots go on in that epoch
    and write only the wallets that changed since (snapshotter.py)."""


def recover(
    snapshot: PartitionState | None,
    decision_at: Callable[[int], Decision | None],
    decisions_after: Callable[[int], Iterable[tuple[int, Decision]]],
) -> Recovered:
    """A partition's state from its snapshot, verified against the log, and the log after it.

    The snapshot names the last decision it folded and that decision's offset; it is
    trusted only when ``decision_at(offset)`` (the committed record at that offset of
    ``wallet.events``, or ``None``) is that decision. A snapshot that does not match was
    written from a state the log does not hold (a worker that no longer owned the
    partition, a store restored from elsewhere): folding only what follows it would lose
    or repeat charges, so the whole partition is replayed instead.
    """
    if snapshot is None:
        state, count = rebuild(decisions_after(-1))
        return Recovered(state, count, "no snapshot")
    if snapshot.events_offset >= 0:
        found = decision_at(snapshot.events_offset)
        if found is None or decision_id(found) != snapshot.last_decision:
            state, count = rebuild(decisions_after(-1))
            return Recovered(state, count, "mismatch")
    state, count = rebuild(decisions_after(snapshot.events_offset), snapshot)
    return Recovered(state, count, "snapshot")


RETAIN_EVERY = 60.0
"""Seconds between two looks for catalogs no wallet here is on any more (``retain``)."""


class RatingProcessor:
    """Decides inputs for the wallet partitions this worker owns."""

    def __init__(self, catalog: Catalog, revisions: Revisions | None = None) -> None:
        self.catalog = catalog
        self.revisions: Revisions = revisions if revisions is not None else {1: catalog}
        """Every catalog revision known here (a wallet is decided with its own)."""
        self._known: dict[int, Catalog] = {}
        """The catalogs decided with here, taken from ``revisions`` (which may be a locked,
        growing mapping that builds a catalog when first asked) when a wallet first names
        one; ``retain`` drops those no wallet is on any more."""
        self.partitions: dict[int, PartitionState] = {}

    def recovered(self, partition: int) -> bool:
        return partition in self.partitions

    def recover(
        self,
        partition: int,
        decisions: Iterable[tuple[int, Decision]],
        snapshot: PartitionState | None = None,
    ) -> int:
        """Rebuild a partition (`rebuild`) and take it on; returns how many decisions were
        folded."""
        state, count = rebuild(decisions, snapshot)
        self.install(partition, state)
        return count

    def install(self, partition: int, state: PartitionState) -> None:
        self.partitions[partition] = state

    def forget(self, partitions: Iterable[int]) -> None:
        """Drop partitions this worker no longer owns (another worker may change them)."""
        for p in partitions:
            self.partitions.pop(p, None)

    def already_decided(self, partition: int, origin: Origin) -> bool:
        """True for an input delivered again after a restart: its decision is on record."""
        return self.partitions[partition].seen(*origin)

    def retain(self) -> list[int]:
        """Let go of the catalogs no wallet here is on (nor the latest): they are built
        again if a wallet adopts one. Returns the revisions let go of."""
        # Copies: a recovery thread may install a partition meanwhile.
        parts = list(self.partitions.values())
        in_use = {max(s.revision, 1) for part in parts for s in list(part.wallets.values())}
        in_use.add(max(self.revisions, default=1))
        retain = getattr(self.revisions, "retain", None)
        dropped = set(retain(in_use) if retain is not None else ())
        dropped.update(n for n in self._known if n not in in_use)
        self._known = {n: c for n, c in self._known.items() if n in in_use}
        return sorted(dropped)

    def suspended(self) -> int:
        return sum(
            1 for part in self.partitions.values() for s in part.wallets.values() if s.suspended
        )

    def decide(
        self,
        partition: int,
        wallet_id: str,
        item: Cdr | Command,
        origin: Origin,
    ) -> Decision | None:
        """The decision for one input, or ``None`` when it was already decided (a redelivery)
        or decided nothing (a tick with nothing due). Raises `Refused` for an input no wallet
        may take (admission), and `MissingRevision` for a revision not known here."""
        if self.already_decided(partition, origin):
            return None
        return self.decide_new(partition, wallet_id, item, origin)

    def decide_new(
        self,
        partition: int,
        wallet_id: str,
        item: Cdr | Command,
        origin: Origin,
        at_ts: float | None = None,
    ) -> Decision | None:
        """`decide` for an input the caller found not `already_decided`; ``at_ts``: the
        input's instant as ``timestamp()`` gives it, when the caller has it (``limits.admit``)."""
        part = self.partitions[partition]
        topic, origin_partition, offset = origin
        state = part.wallets.get(wallet_id) or initial_state(wallet_id)
        try:
            revision, catalog = pick(self._known, state, item)
        except MissingRevision:
            wanted = max(revision_for(state, item), 1)
            found = self.revisions.get(wanted)
            if found is not None:
                self._known[wanted] = found
            revision, catalog = pick(self._known, state, item)
        ts = admit(catalog, wallet_id, item, state.terms is not None, at_ts)
        made, part.wallets[wallet_id] = decide(
            state, wallet_id, item, catalog, origin, revision, ts
        )
        part.mark(topic, origin_partition, offset)
        return made if made.events else None
