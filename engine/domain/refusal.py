"""Refusals: the one way a rule says no.

Every rule that refuses an input raises `Refused` with a reason and a detail, wherever it
sits: admission (limits.py: an input no wallet may take), the deciders (usage, account).
What becomes of it depends on where the input stood: a refusal inside a wallet's decision is
the input's one rejection event (`rejection`); a refusal before any wallet (admission) is a
rejection record on ``cdr.rejected``, built by the flow.
"""

from __future__ import annotations

from .cdr import Cdr
from .commands import Command
from .events import CdrRejected, CommandRejected, Event
from .ids import rejection_id


class Refused(Exception):
    """Why an input is rejected: the reason and detail of its ``CdrRejected`` or
    ``CommandRejected``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail


def rejection(wallet_id: str, item: Cdr | Command, reason: str, detail: str) -> Event:
    """The one event of a rejected input, named by its reason: a later, accepted retry of
    the same input can never reuse its id."""
    eid = rejection_id(item.key, reason)
    if isinstance(item, Cdr):
        return CdrRejected(
            eid, wallet_id, item.started_at, item.cdr_id, item.iccid, reason, detail, item.source
        )
    return CommandRejected(
        eid, wallet_id, item.at, item.command_id, type(item).__name__, reason, detail
    )
