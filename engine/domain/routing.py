"""Which wallet owns a record: the ICCID's subscription, or where a command moved the SIM."""

from __future__ import annotations

from collections.abc import Mapping

from .catalog import Catalog


def wallet_of(catalog: Catalog, moves: Mapping[str, str], iccid: str) -> str | None:
    """The wallet that rates ``iccid``'s usage; ``None`` for an unknown SIM."""
    moved = moves.get(iccid)
    if moved is not None:
        return moved
    sub = catalog.subscriptions.get(iccid)
    return None if sub is None else sub.wallet
