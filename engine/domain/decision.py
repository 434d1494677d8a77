"""A decision: every event decided from one input, with the input and where it came from.

It is the unit the engine moves around: the decider makes one per input (``flow.decide``),
the stream writes it whole as one record on ``wallet.events`` (so a crash never leaves half
of it behind), recovery folds it back, and the event store appends it (its events, and its
input for replay).
"""

from __future__ import annotations

from typing import NamedTuple

import msgspec

from .cdr import Cdr
from .commands import Command
from .events import Event


class Origin(NamedTuple):
    """Where an input first entered Kafka: a restarted worker knows by it what it already
    decided. Inputs decided without Kafka (offline, replay) come from `NOWHERE`."""

    topic: str
    partition: int
    offset: int


NOWHERE = Origin("", 0, -1)

Input = Cdr | Command
"""What a wallet decides on: a usage record or a command (a clock tick is a command)."""


class Decision(msgspec.Struct, frozen=True, gc=False):
    """What one input decided, in one wallet. On the wire it is a ``wallet.events`` record,
    so its fields stay as they are (flat origin, the input as ``cdr`` or ``command``)."""

    wallet_id: str
    input: str
    """The input's key (ids.py): the prefix of its events' ids."""
    origin_topic: str
    origin_partition: int
    origin_offset: int
    events: tuple[Event, ...]
    cdr: Cdr | None = None
    command: Command | None = None
    revision: int = 0
    """The catalog revision the input was decided with (0: the first)."""

    @property
    def item(self) -> Cdr | Command | None:
        """The input decided on, carried so that replay can re-rate it from the store."""
        return self.cdr if self.cdr is not None else self.command

    @property
    def origin(self) -> Origin:
        return Origin(self.origin_topic, self.origin_partition, self.origin_offset)


def decision(
    wallet_id: str,
    item: Cdr | Command,
    events: list[Event],
    origin: Origin = NOWHERE,
    revision: int = 0,
    key: str | None = None,
) -> Decision:
    """The record of ``wallet_id``'s decision on ``item``; ``key``: ``item.key``, when the
    caller has it already (``flow.decide``: the one the events were named by)."""
    cdr, command = (item, None) if isinstance(item, Cdr) else (None, item)
    input_key = item.key if key is None else key
    return Decision(wallet_id, input_key, *origin, tuple(events), cdr, command, revision)
