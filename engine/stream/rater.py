"""The rate stage, one input at a time: a command from ``wallet.commands`` or a record of
routed CDRs from ``cdr.by-wallet`` → admitted and decided by the partition's processor
(processor.py) → its decision on ``wallet.events`` and its follow-ups (bar / unbar actions,
routed charges, the directory entries it changed), all in the partition's open transaction
(fencing.PartitionWriter). The agent around it (agents.py) opens and commits the
transactions and the offsets.
"""

from __future__ import annotations

import collections
from collections.abc import Callable

import msgspec

from ..codec import Rejected, encode, raw_fields, read_command
from ..domain import Cdr, Command
from ..domain.commands import AdoptCatalog, OpenWallet
from ..domain.decision import Decision, Origin
from ..domain.events import CdrRejected, Event
from ..flow import MissingRevision, Refused, catalog_at, follow_ups, refused
from .directory import DIRECTORY_EVENTS, entries_after, entry_key, entry_value
from .fencing import PartitionWriter
from .metrics import Metrics
from .positions import Batch, Record
from .processor import RatingProcessor, decision_id
from .routed import decode_routed
from .topics import Topics

REVISION_WAIT = 30.0
"""Seconds an ``AdoptCatalog`` waits for its revision to reach this worker."""

Reject = Callable[[PartitionWriter, Rejected, bytes | None], None]
Failed = Callable[[str, Exception, str, bytes], Rejected]


class BatchTally:
    """What one batch decided, gathered as it goes and counted once it is done: per input
    only lists are extended, so the per-CDR work of counting runs in C (`Rater.counts`)."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        """Skipped redeliveries and decisions."""
        self.events: list[Event] = []
        """Every decision's events, counted by type at the end."""
        self.ingested: list[int] = []
        """Each CDR received: its arrival on ``cdr.raw`` (epoch milliseconds)..."""
        self.started: list[float] = []
        """... and its start (epoch seconds), for the latency histograms. Taken as each
        record is decoded, while its CDRs are fresh in the processor's caches: read from the
        CDRs once the batch was durable, thousands of CDRs later, it took several times as
        long (docs/performance.md, "Where the event loop holds the GIL")."""


class Rater:
    def __init__(
        self,
        names: Topics,
        processor: RatingProcessor,
        metrics: Metrics,
        home: Callable[[str], int],
        reject: Reject,
        failed: Failed,
    ) -> None:
        self.names, self.processor, self.metrics = names, processor, metrics
        self._home, self._reject, self._failed = home, reject, failed

    async def await_revisions(self, batch: Batch) -> None:
        """Wait (bounded) for the catalog revision an ``AdoptCatalog`` or ``OpenWallet``
        names when it reached this worker before the revision itself did; one still missing
        is then rejected (``unknown_revision``)."""
        revisions = self.processor.revisions
        wait = getattr(revisions, "wait_for", None)
        if wait is None:
            return
        commands = self.names.wallet_commands.name
        for msg in batch.inputs:
            if msg.topic == commands and (
                # ``find``: ``in`` tries the operand as an integer first, at a cost
                msg.value.find(b"AdoptCatalog") >= 0 or msg.value.find(b"OpenWallet") >= 0
            ):
                command = read_command(msg.value, "")
                if (
                    isinstance(command, AdoptCatalog | OpenWallet)
                    and command.revision > 1
                    and command.revision not in revisions
                ):
                    await wait(command.revision, REVISION_WAIT)

    def answer(
        self,
        out: PartitionWriter,
        msg: Record,
        tally: BatchTally,
    ) -> None:
        """Decide one input record (a command, or a group of routed CDRs) into ``out``."""
        commands_topic = self.names.wallet_commands.name
        partition, value = msg.partition, msg.value
        if msg.topic == commands_topic:
            self.metrics.commands.inc()
            origin = Origin(commands_topic, partition, msg.offset)
            where = _where(origin)
            try:
                command = read_command(value, where)
            except Exception as exc:
                command = self._failed("decode", exc, where, value)
            if not isinstance(command, Rejected):
                wallet = command.wallet_id
                if msg.key != wallet.encode() or self._home(wallet) != partition:
                    command = wrong_partition(msg.key, wallet, where, value)
            if isinstance(command, Rejected):
                self._reject(out, command, msg.key)
                return
            made = self._decide(out, partition, command.wallet_id, command, origin, tally, value)
            if made is not None:
                out.last_decision = decision_id(made)
            return
        try:
            routed = decode_routed(value)
        except Exception as exc:  # enrich wrote it: only a foreign record fails here
            where = _where(Origin(msg.topic, partition, msg.offset))
            detail = f"{type(exc).__name__}: {exc}"[:1000]
            bad = Rejected("malformed", detail, where, **raw_fields(value))
            self._reject(out, bad, msg.key)
            return
        raw_topic, raw_partition = self.names.cdr_raw.name, routed.partition
        tally.ingested.extend(routed.ingested)
        # Each CDR's start, converted once: for the age histogram and for its admission.
        starts = [c.started_at.timestamp() for c in routed.cdrs]
        tally.started.extend(starts)
        last = None
        for wallet, offset, cdr, start in zip(
            routed.wallets, routed.offsets, routed.cdrs, starts, strict=True
        ):
            origin = Origin(raw_topic, raw_partition, offset)
            if self._home(wallet) != partition:
                wrong = wrong_partition(msg.key, wallet, _where(origin), encode(cdr))
                self._reject(out, wrong, msg.key)
                continue
            made = self._decide(out, partition, wallet, cdr, origin, tally, at_ts=start)
            if made is not None:
                last = made
        if last is not None:  # named once per record, not per decision
            out.last_decision = decision_id(last)

    def observe(self, tally: BatchTally, now: float) -> None:
        """The latency histograms of a batch's CDRs, once their decisions are durable at
        ``now`` (epoch seconds)."""
        metrics = self.metrics
        metrics.ingest_latency.observe_many([now - ms / 1000 for ms in tally.ingested], 0.0)
        metrics.cdr_age.observe_many([now - started for started in tally.started], 0.0)

    @staticmethod
    def counts(tally: BatchTally) -> collections.Counter[str]:
        """The batch's counts: skips, decisions, events by type and CDRs rejected by reason
        (vitals.Vitals.count)."""
        counts = tally.counts.copy()
        kinds = collections.Counter(map(type, tally.events))
        for kind, n in kinds.items():
            counts[kind.__name__] += n
        if CdrRejected in kinds:
            for e in tally.events:
                if isinstance(e, CdrRejected):
                    counts["rejected:" + e.reason] += 1
        return counts

    def _decide(
        self,
        out: PartitionWriter,
        partition: int,
        wallet: str,
        item: Cdr | Command,
        origin: Origin,
        tally: BatchTally,
        raw: bytes | None = None,
        at_ts: float | None = None,
    ) -> Decision | None:
        """Admit and decide one input (engine.flow), and produce its decision and follow-ups
        in the partition's transaction (not yet committed).

        An input no wallet may take (admission: unknown wallet, instant out of bounds) and
        one whose decision raised are rejected on ``cdr.rejected``: no event, no state, and the
        partition goes on. ``at_ts``: a CDR's start as ``timestamp()`` gave it for the age
        histogram, so that admission does not convert it again. Returns the decision produced,
        if any: the caller names the transaction's last one (``out.last_decision``)."""
        processor = self.processor
        if processor.already_decided(partition, origin):
            tally.counts["skipped"] += 1
            return None
        try:
            decision = processor.decide_new(partition, wallet, item, origin, at_ts)
        except Refused as refusal:
            self._reject(out, refused(refusal, _where(origin), wallet, item), _key(item))
            return None
        except MissingRevision as exc:
            missing = Refused("unknown_revision", str(exc))
            self._reject(out, refused(missing, _where(origin), wallet, item), _key(item))
            return None
        except Exception as exc:
            raw = raw if raw is not None else encode(item)
            bad = self._failed("decide", exc, _where(origin), raw)
            self._reject(out, msgspec.structs.replace(bad, wallet_id=wallet), _key(item))
            return None
        if decision is None:
            return None
        key = wallet.encode()
        out.produce(self.names.wallet_events.name, key, encode(decision), partition)
        tally.counts["decisions"] += 1
        tally.events.extend(decision.events)
        actions, charges = follow_ups(decision.events)
        for action in actions:
            # In the decision's transaction: the action exists exactly when the decision
            # does (a consumer reading read_uncommitted may still see an aborted one).
            out.produce(self.names.network_actions.name, key, encode(action))
        for charge in charges:
            out.produce(self.names.wallet_commands.name, charge.wallet_id.encode(), encode(charge))
        # Most decisions only rate usage or move money, and change no directory entry.
        if not DIRECTORY_EVENTS.isdisjoint(map(type, decision.events)):
            self._directory(out, partition, decision)
        return decision

    def _directory(self, out: PartitionWriter, partition: int, decision: Decision) -> None:
        """The directory entries the decision changed, in its transaction (directory.py)."""
        state = self.processor.partitions[partition].wallets[decision.wallet_id]
        catalog = catalog_at(self.processor.revisions, state.revision)
        ts = int(decision.events[0].at.timestamp())
        for entry in entries_after(state, catalog, decision.events, ts):
            out.produce(self.names.wallet_directory.name, entry_key(entry), entry_value(entry), 0)

    # -- clock and heartbeat ---------------------------------------------------------------


def wrong_partition(key: bytes | None, wallet: str, where: str, raw: bytes) -> Rejected:
    """The rejection of a wallet input keyed or placed for another wallet (or placed by a
    partitioner other than murmur2): deciding it would fork the wallet's history on a
    partition that does not own it."""
    detail = f"record keyed {key!r} is not on the partition that owns wallet {wallet!r}"
    return Rejected("wrong_partition", detail, where, wallet_id=wallet, **raw_fields(raw))


def _where(origin: Origin) -> str:
    """``cdr.raw/0@1234``: an input's origin as a rejection names it (only a rejection
    needs it, so it is not built for each input)."""
    return "{}/{}@{}".format(*origin)


def _key(item: Cdr | Command) -> bytes | None:
    """The key of a rejection on ``cdr.rejected``: the ICCID, when there is one."""
    return item.iccid.encode() if isinstance(item, Cdr) else None
