"""Which wallet owns a record: the ICCID's subscription, or where a command moved the SIM."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from .catalog import Catalog
from .commands import ApplyCharge
from .events import Event, UsageRated
from .ids import routed_command_id


def wallet_of(catalog: Catalog, moves: Mapping[str, str], iccid: str) -> str | None:
    """The wallet that rates ``iccid``'s usage; ``None`` for an unknown SIM."""
    moved = moves.get(iccid)
    if moved is not None:
        return moved
    sub = catalog.subscriptions.get(iccid)
    return None if sub is None else sub.wallet


def routed_charges(events: list[Event] | tuple[Event, ...]) -> Iterator[ApplyCharge]:
    """Charges a decision routes to another wallet (split billing), as commands to it.

    The command id derives from the event, so sending it twice debits the payer once.
    """
    for e in events:
        if isinstance(e, UsageRated) and e.payer != e.wallet_id and e.amount:
            yield ApplyCharge(
                command_id=routed_command_id(e.id),
                wallet_id=e.payer,
                at=e.at,
                source_wallet=e.wallet_id,
                cdr_id=e.cdr_id,
                amount=e.amount,
            )
