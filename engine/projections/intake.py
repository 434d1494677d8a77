"""How events enter ClickHouse: the ``event_intake`` table their JSON is parsed into, and
which event fields are deliberately left out of every projection.

Events reach ClickHouse as the JSON the store keeps (``JSONEachRow``), or, in a direct
rebuild, read by ClickHouse itself from the store and parsed by ``JSONExtract``
(``intake_from``): both parse into the same columns. ``event_intake`` is a ``Null`` table
(nothing is kept); the materialized views of ``tables.MAPPINGS`` turn each inserted block
into rows. Event type names in SQL come from the event classes (``types``), with the former
names of a renamed event (``codec.RENAMED``), since stored payloads keep the name they were
written with.

Every field of every event is either read by a mapping or listed here as not projected, with
the reason (``UNPROJECTED_EVENTS``, ``UNPROJECTED_FIELDS``): tests/projections/test_intake.py
holds the two to the ``Event`` union, so a new field cannot be dropped without saying so.
"""

from __future__ import annotations

from itertools import pairwise

from ..codec import stored_names, tag
from ..domain.events import (
    AutoTopUpRequested,
    CdrRejected,
    Charged,
    CommandRejected,
    DebtWrittenOff,
    GrantAdded,
    GrantExpired,
    PlanChanged,
    PoolCycleClosed,
    RatingAdjusted,
    SimAttached,
    SimDetached,
    SimsBarred,
    SimsUnbarred,
    ThresholdCrossed,
    UsageRated,
    WalletOpened,
)

INTAKE = "event_intake"
"""Where the events' JSON is inserted; the materialized views of ``MAPPINGS`` read it."""

_LC = "LowCardinality(String)"

# The event fields any mapping reads, typed as in the events; every other field is skipped.
# A field an event leaves out (``omit_defaults``) or sets to null reads as the type's default.
# The strings of few values (``_LC``: wallets, zones, services, plans...) are made
# ``LowCardinality`` once, here: the mappings then pass on dictionary indices to the tables'
# ``LowCardinality`` columns (and repeat them for each line of an ``ARRAY JOIN``) instead of
# hashing every string again in each table.
INTAKE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("type", _LC),
    ("id", "String"),
    ("wallet_id", _LC),
    ("at", "DateTime64(6, 'UTC')"),
    ("cdr_id", "String"),
    ("iccid", "String"),
    ("service", _LC),
    ("zone", _LC),
    ("volume", "Int64"),
    ("rated_volume", "Int64"),
    ("pooled_volume", "Int64"),
    ("charged_volume", "Int64"),
    ("amount", "Int64"),
    ("plan", _LC),
    ("plan_version", "UInt32"),
    ("cycle", _LC),
    ("payer", _LC),
    ("filter", _LC),
    ("replay", _LC),
    ("source_wallet", _LC),
    ("kind", _LC),
    ("draws", "Array(Tuple(String, String, Int64))"),  # [pool_id, bucket, volume]
    ("debits", "Array(Tuple(String, Int64))"),  # [grant_id, amount]
    ("overdraft", "Int64"),
    ("uncollected", "Int64"),
    ("splits", "Array(Tuple(String, Int64))"),  # [provider, amount]
    ("credit", "Tuple(amount Int64)"),
    ("grant", "Tuple(kind String, amount Int64)"),
    ("grants", "Array(Tuple(amount Int64))"),
    ("pool_id", _LC),
    ("tier", "UInt16"),
    ("size", "Int64"),
    ("balance", "Int64"),
    ("allowance", "Int64"),
    ("used", "Int64"),
    ("overage", "Int64"),
    ("overage_amount", "Int64"),
    ("credited_volume", "Int64"),
    ("currency", _LC),
    (
        "terms",
        "Tuple(name String, overdraft_limit Int64, suspend_at Int64, resume_at Int64, "
        "thresholds Array(Int64), cycle_anchor_day UInt8)",
    ),
    ("revision", "UInt32"),
    ("digest", "String"),
    ("reason", "String"),
)

INTAKE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {INTAKE} (\n"
    + ",\n".join(f"    {name} {kind}" for name, kind in INTAKE_COLUMNS)
    + "\n) ENGINE = Null"
)

INTAKE_SETTINGS: dict[str, str | int] = {
    "input_format_skip_unknown_fields": 1,
    "input_format_null_as_default": 1,
    "input_format_json_ignore_unknown_keys_in_named_tuple": 1,
    "input_format_json_defaults_for_missing_elements_in_named_tuple": 1,
    "date_time_input_format": "best_effort",
    # The mappings of one block run side by side.
    "parallel_view_processing": 1,
}
"""Settings of the ``INSERT INTO event_intake FORMAT JSONEachRow`` of stored events."""

# Parsed as ``String`` (quicker than into ``LowCardinality`` elements); the insert into the
# intake makes them ``LowCardinality``.
_PARSED = "Tuple(" + ", ".join(f"{n} {k.replace(_LC, 'String')}" for n, k in INTAKE_COLUMNS) + ")"


def intake_from(
    source: str, after: int, until: int, streams: int = 1, payload: str = "payload"
) -> str:
    """``INSERT INTO event_intake`` of the events at positions ``(after, until]`` read by
    ClickHouse itself from the table function ``source`` (e.g. ``sqlite('events.db',
    'events')``): each stored JSON payload parsed by ``JSONExtract`` into the intake's
    columns, as the ``JSONEachRow`` insert parses it (absent fields read as defaults).
    ``payload`` is SQL giving a payload's JSON as a ``String`` (``direct.Source``).

    The range is cut into ``streams`` equal slices, one ``SELECT`` each under ``UNION ALL``:
    each slice is its own reader of the store (the position bounds go to the store), so
    reading, parsing and the mappings run on as many threads. Order is not kept, and need
    not be: every row is keyed by its event's id."""
    parsed = _PARSED.replace("'", "\\'")
    count = max(1, min(int(streams), int(until) - int(after)))
    cuts = [int(after) + (int(until) - int(after)) * i // count for i in range(count + 1)]
    slices = " UNION ALL ".join(
        f"SELECT untuple(JSONExtract(toString({payload}), '{parsed}')) "
        f"FROM {source} WHERE position > {low} AND position <= {high}"
        for low, high in pairwise(cuts)
    )
    return f"INSERT INTO {INTAKE} SELECT * FROM ({slices})"


def names(*events: type) -> tuple[str, ...]:
    """The type names ``events`` are stored under: each one's tag, then its former names."""
    return stored_names(*(tag(event) for event in events))


def types(*events: type) -> str:
    """SQL: the intake row is one of ``events`` (under any name it was stored with)."""
    found = names(*events)
    if len(found) == 1:
        return f"type = '{found[0]}'"
    return "type IN (" + ", ".join(f"'{n}'" for n in found) + ")"


UNPROJECTED_EVENTS: dict[type, str] = {
    ThresholdCrossed: "an alert: the balance it crossed at is in balance_changes",
    AutoTopUpRequested: "a request to the payment system; its TopUp gives the credit",
    SimsBarred: "a network action, carried out on network.actions; suspensions has the state",
    SimsUnbarred: "a network action, carried out on network.actions; suspensions has the state",
    SimAttached: "a SIM move: subscriptions live in the catalog and the store",
    SimDetached: "a SIM move: subscriptions live in the catalog and the store",
    PlanChanged: "a plan change: each usage fact names the plan it was rated with",
    CdrRejected: "a rejection moves no money; it is counted in metrics and kept in the store",
    CommandRejected: "a rejection moves no money; it is counted in metrics and kept in the store",
}
"""Events that give no rows at all, and why."""

UNPROJECTED_FIELDS: dict[type, dict[str, str]] = {
    WalletOpened: {"dedup_window": "the decider's, not money"},
    UsageRated: {
        "source": "which operator sent the CDR: kept in the store with the CDR",
        "tiers_per_zone": "how tiers were counted, already in the amount",
        "overage_pool": "which pool a later true-up credits: pool_cycles has the result",
    },
    Charged: {
        "ref": "what was charged (subscription, add-on, pool): kept in the store",
        "cycle": "the cycle charged is in its ref; balance_changes and revenue are by day",
        "source_wallet": "a routed usage's revenue is counted on its UsageRated",
        "cdr_id": "a routed usage's CDR is on its UsageRated",
    },
    RatingAdjusted: {
        "debt_repaid": "a share of credit.amount, already in balance_changes.credited",
    },
    PoolCycleClosed: {
        "debt_repaid": "a share of credit.amount, already in balance_changes.credited",
    },
    GrantAdded: {
        "debt_repaid": "a share of the grant's amount, already in balance_changes.credited",
        "voucher": "the redeemed code is in the store; the grant's kind says voucher",
        "rearmed": "thresholds re-armed: the decider's, not money",
        "auto_top_up_rearmed": "the decider's, not money",
    },
    GrantExpired: {"grant_id": "which grant expired is the store's; the amount is breakage"},
    DebtWrittenOff: {"reason": "the operator's words, kept in the store"},
}
"""Fields of projected events that no mapping reads, and why."""
