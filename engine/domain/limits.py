"""Limits in the contract: how far an input's values may go before it is refused.

The network carries usage before its record arrives, so a CDR is rated whatever it costs;
but a value no device can produce (a 2^70-byte session, a record dated in the year 9999, a
top-up of 10^30 EUR) is a broken or hostile sender, not usage. Each limit is catalog data
(``settings`` in the YAML, docs/catalog.md) with a default, and an input beyond one is
rejected with a reason, never charged. The defaults keep every accepted amount and volume
far inside the ``Int64`` columns of the projections and every instant inside their
``DateTime64`` range.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import msgspec

from .cdr import Cdr
from .commands import AdoptCatalog, Command, OpenWallet
from .refusal import Refused

if TYPE_CHECKING:
    from .catalog import Catalog

EARLIEST = 946_684_800
"""2000-01-01T00:00:00Z: the default first instant an input may carry."""
LATEST = 4_102_444_800
"""2100-01-01T00:00:00Z: the default instant every input must come before."""
CEILING = 10_413_792_000
"""2300-01-01T00:00:00Z: no catalog may set ``latest`` beyond it (the projections'
``DateTime64`` columns end in 2299)."""

DEFAULT_MAX_VOLUME: dict[str, int] = {
    "data": 1 << 40,  # 1 TiB in one record
    "sms": 100_000,  # messages
    "voice": 31 * 86_400,  # a month of seconds
    "event": 1_000_000_000,  # units
}
"""Largest volume one CDR may carry, per service, in its base unit."""

DEFAULT_MAX_AMOUNT = 10**12
"""Largest top-up or grant, in micro-units (1,000,000 units of the currency)."""

DEFAULT_MAX_CHARGE = 10**13
"""Largest charge one input may make, in micro-units (10,000,000 units of the currency)."""

DEFAULT_PRIORITY_RANGE = (0, 1000)
"""Smallest and largest grant priority a top-up may ask for."""

INT64_MAX = (1 << 63) - 1


class Limits(msgspec.Struct, frozen=True, gc=False):
    """The bounds of a catalog's ``settings`` (each with a default)."""

    earliest: int = EARLIEST
    """Epoch seconds: inputs dated before are refused (``invalid_time``)."""
    latest: int = LATEST
    """Epoch seconds: inputs dated at or after are refused (``invalid_time``)."""
    max_volume: dict[str, int] = msgspec.field(default_factory=lambda: dict(DEFAULT_MAX_VOLUME))
    """Service -> largest volume of one CDR (``volume_over_limit``)."""
    max_amount: int = DEFAULT_MAX_AMOUNT
    """Largest top-up or grant, micro-units (``amount_over_limit``)."""
    max_charge: int = DEFAULT_MAX_CHARGE
    """Largest charge of one input, micro-units (``amount_over_limit``)."""
    min_priority: int = DEFAULT_PRIORITY_RANGE[0]
    max_priority: int = DEFAULT_PRIORITY_RANGE[1]
    """Range of a top-up's grant priority (``invalid_priority``)."""


DEFAULT_LIMITS = Limits()


def time_problem(limits: Limits, at: datetime, ts: float | None = None) -> str | None:
    """Why the instant ``at`` is out of bounds, or ``None``; ``ts``: ``at.timestamp()``
    when the caller has it already."""
    if ts is None:
        ts = at.timestamp()
    if ts < limits.earliest or ts >= limits.latest:
        return (
            f"{at.isoformat()} is outside the accepted range "
            f"[{_iso(limits.earliest)}, {_iso(limits.latest)})"
        )
    return None


def volume_problem(limits: Limits, service: str, volume: int) -> str | None:
    limit = limits.max_volume.get(service)
    if limit is None:
        limit = DEFAULT_MAX_VOLUME.get(service, INT64_MAX)
    if volume > limit:
        return f"volume {volume} is over the {service} limit of {limit} per record"
    return None


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


_OPENING = (OpenWallet, AdoptCatalog)
"""Commands a wallet the catalog does not list takes before it is opened."""


def admit(
    catalog: Catalog,
    wallet_id: str,
    item: Cdr | Command,
    opened: bool = False,
    at_ts: float | None = None,
) -> int:
    """Raise `Refused` when ``item`` may not reach wallet ``wallet_id`` at all
    (``unknown_wallet``, ``invalid_time``); else return its instant in epoch seconds, which
    the decider then takes as it is (one conversion per input). ``at_ts``: the item's
    instant as ``datetime.timestamp()`` gives it, when the caller has it already (the rate
    agent takes each CDR's for its age histogram).

    A wallet the catalog does not list may still take it: when an ``OpenWallet`` opened it
    (``opened``: its state has ``terms``), and an ``OpenWallet`` or an ``AdoptCatalog``
    always reach it (the wallet decides: it opens, or refuses ``unknown_wallet``).

    An input refused here decides nothing and touches no wallet: the stream and the offline
    run write it as a rejection record, never as an event, so it leaves no stream behind.
    """
    if wallet_id not in catalog.wallets and not opened and not isinstance(item, _OPENING):
        raise Refused("unknown_wallet", f"no wallet {wallet_id}")
    at = item.started_at if isinstance(item, Cdr) else item.at
    ts = at.timestamp() if at_ts is None else at_ts
    limits = catalog.limits
    if not limits.earliest <= ts < limits.latest:  # time_problem's bounds, asked inline
        raise Refused("invalid_time", time_problem(limits, at, ts) or "")
    return int(ts)
