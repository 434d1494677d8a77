"""Zone lookup: a visited network (MCC-MNC) to its price zone."""

from __future__ import annotations


def zone_of(networks: dict[str, str], mcc: str, mnc: str) -> str | None:
    """The zone of network ``mcc-mnc``: an exact entry wins over the country's wildcard.

    ``None`` when neither is known: an unknown network is rejected, never guessed.
    """
    return networks.get(f"{mcc}-{mnc}") or networks.get(mcc)
