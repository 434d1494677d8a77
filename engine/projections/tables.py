"""Every ClickHouse table of the projections, each column defined once.

A table is a list of ``Column`` specs; its DDL, its column list and (for a fact table) the
materialized view that maps ``event_intake`` rows to its rows are all generated from them.

Each fact table is a ``ReplacingMergeTree`` whose sorting key is the event id (with a line
number where one event gives several rows), and every view reads it ``FINAL``: a batch
delivered twice leaves two copies of a row until a merge, and ``FINAL`` counts one, exactly.
Analysts query the views, or the tables with ``FINAL``.

Money columns are ``Int64`` micro-units, as in the events; volumes are base units (bytes,
messages, seconds, units). ``at`` is the event's instant in UTC, ``day`` its UTC date.
The catalog tables (``providers``, ``zones``, ``wallets``, ``pools``, ``pool_allowances``)
are filled only when a catalog is given to the projector. Which events give which rows:

- ``UsageRated``: a usage fact; a revenue line per split line; a pool draw per draw; a balance
  change when it moved this wallet's money (a routed usage moves the payer's, by ``Charged``).
- ``RatingAdjusted`` (a re-rating's correction): a usage fact of kind ``adjustment`` with the
  signed differences; revenue lines of kind ``adjustment``; a balance change of
  ``credit - (debits + overdraft)``.
- ``Charged``: revenue lines of its kind (none for ``routed_usage``) and a balance change.
- ``WalletOpened``, ``GrantAdded``: a balance change (credit). ``GrantExpired``: a balance
  change and a breakage revenue line (provider ``''``: breakage is not split).
  ``DebtWrittenOff``: a balance change (credit) and a negative revenue line.
- ``PoolStepped``: a pool step. ``WalletSuspended`` / ``WalletResumed``: a suspension row.
- The others give no rows (``intake.UNPROJECTED_EVENTS`` says why).

Every row carries its event's id, so a row delivered twice is recognised.
"""

from __future__ import annotations

from typing import NamedTuple

from ..domain.events import (
    Charged,
    DebtWrittenOff,
    GrantAdded,
    GrantExpired,
    PoolStepped,
    RatingAdjusted,
    UsageRated,
    WalletOpened,
    WalletResumed,
    WalletSuspended,
)
from .intake import INTAKE, types


class Column(NamedTuple):
    """A column, defined once: its DDL, and for a fact table how an event fills it."""

    name: str
    type: str
    fill: str | None = None
    """SQL over ``event_intake`` that fills it (fact tables); None: not filled by a mapping
    (a catalog column, or one ClickHouse computes: ``default``)."""
    default: str = ""
    note: str = ""


class Table(NamedTuple):
    """A table: its DDL and, for a fact table, its mapping are generated from ``columns``."""

    name: str
    columns: tuple[Column, ...]
    order_by: str
    engine: str = "ReplacingMergeTree"
    events: tuple[type, ...] = ()
    """The events a fact table's mapping reads; empty for the other tables."""
    source: str = ""
    """SQL after ``FROM event_intake`` (an ``ARRAY JOIN``, a ``WHERE``): default, rows of
    ``events`` only."""


def _c(name: str, kind: str, fill: str | None = None, note: str = "") -> Column:
    return Column(name, kind, fill, note=note)


_LC = "LowCardinality(String)"
_TIME = "DateTime64(3, 'UTC')"
# Milliseconds, rounded as the event's instant is (a DateTime64(3) keeps milliseconds).
_AT = "fromUnixTimestamp64Milli(toInt64(roundBankers(toUnixTimestamp64Micro(at) / 1000)), 'UTC')"
_DAY = Column("day", "Date", default="toDate(at)")
_EVENT_ID = _c("event_id", "String", "id")
_LINE = _c("line", "UInt16", "toUInt16(n - 1)")
_WALLET = _c("wallet", _LC, "wallet_id")
_DEBITED = "overdraft + arraySum(d -> d.2, debits)"
# A write-off raises the balance as a credit does: the debt it forgives is no longer owed.
_CREDITED = (
    f"multiIf({types(WalletOpened)}, arraySum(g -> g.amount, grants), "
    f"{types(GrantAdded)}, grant.amount, {types(RatingAdjusted)}, credit.amount, "
    f"{types(DebtWrittenOff)}, {INTAKE}.amount, 0)"
)
# ``amount`` qualified: alone it would name the line's amount, the mapping's own column.
# Breakage is one line of revenue, not split among providers; a write-off is one negative
# line (provider ''), so revenue less write-offs is what was collected or is still owed.
_LINES = (
    f"multiIf({types(GrantExpired)}, [('', {INTAKE}.amount)], "
    f"{types(DebtWrittenOff)}, [('', -{INTAKE}.amount)], splits)"
)


def _kind(*between: tuple[type, str]) -> str:
    """A row's kind: the event's own ``kind`` (a charge's), else one named by its type."""
    named = ((UsageRated, "'usage'"), (RatingAdjusted, "'adjustment'"), *between)
    named += ((DebtWrittenOff, "'written_off'"),)
    return "multiIf(" + "".join(f"{types(e)}, {v}, " for e, v in named) + "kind)"


FACTS: tuple[Table, ...] = (
    Table(
        "usage_facts",
        (
            _EVENT_ID,
            _c(
                "kind", _LC, f"if({types(UsageRated)}, 'rated', 'adjustment')", "rated | adjustment"
            ),
            _c("at", _TIME, _AT),
            _DAY,
            # A correction of usage rated in another wallet (split billing) is that wallet's.
            _c(
                "wallet",
                _LC,
                "if(source_wallet = '', wallet_id, source_wallet)",
                "where it was rated",
            ),
            _c("payer", _LC, f"if({types(UsageRated)}, payer, wallet_id)", "who pays"),
            _c("cdr_id", "String", "cdr_id"),
            _c("iccid", "String", "iccid"),
            _c("zone", _LC, "zone"),
            _c("service", _LC, "service"),
            _c("volume", "Int64", "volume"),
            _c("rated_volume", "Int64", "rated_volume"),
            _c("pooled_volume", "Int64", "pooled_volume"),
            _c("charged_volume", "Int64", "charged_volume"),
            _c("amount", "Int64", "amount"),
            _c("plan", _LC, "plan"),
            _c("plan_version", "UInt32", "plan_version"),
            _c("cycle", _LC, "cycle"),
            _c("filter", _LC, "filter", "'' when no rating filter applied"),
            _c("replay", _LC, "replay", "the re-rating run of an adjustment"),
        ),
        "event_id",
        events=(UsageRated, RatingAdjusted),
    ),
    Table(
        "balance_changes",
        (
            _EVENT_ID,
            _c("type", _LC, "type", "the event type"),
            _c(
                "kind",
                _LC,
                _kind(
                    (WalletOpened, "'opening'"),
                    (GrantAdded, "grant.kind"),
                    (GrantExpired, "'expired'"),
                ),
                "usage, mrc, top_up, voucher, expired, ...",
            ),
            _c("at", _TIME, _AT),
            _DAY,
            _WALLET,
            _c("delta", "Int64", "credited - debited - expired", "credited - debited - expired"),
            _c("credited", "Int64", _CREDITED),
            _c(
                "debited",
                "Int64",
                f"if({types(UsageRated, RatingAdjusted, Charged)}, {_DEBITED}, 0)",
                "from grants and overdraft",
            ),
            _c("expired", "Int64", f"if({types(GrantExpired)}, amount, 0)"),
            _c(
                "uncollected",
                "Int64",
                "uncollected",
                "beyond the overdraft limit: owed, not in the balance",
            ),
        ),
        "event_id",
        events=(
            UsageRated,
            Charged,
            RatingAdjusted,
            WalletOpened,
            GrantAdded,
            GrantExpired,
            DebtWrittenOff,
        ),
        # Money moved: a usage or charge that debited or left something owed, a correction
        # that also credited, an opening with grants, every grant added or expired.
        source=(
            f"WHERE multiIf({types(UsageRated, Charged)}, debited != 0 OR uncollected != 0, "
            f"{types(RatingAdjusted)}, debited != 0 OR credited != 0 OR uncollected != 0, "
            f"{types(WalletOpened)}, notEmpty(grants), "
            f"{types(GrantAdded, GrantExpired, DebtWrittenOff)})"
        ),
    ),
    Table(
        "revenue_lines",
        (
            _EVENT_ID,
            _LINE,
            _c("at", _TIME, _AT),
            _DAY,
            _WALLET,
            _c("provider", _LC, "s.1", "'' for breakage (not split among providers)"),
            _c(
                "kind",
                _LC,
                _kind((GrantExpired, "'breakage'")),
                "usage, mrc, addon_mrc, pool_fee, pool_step, restart_fee, adjustment, breakage",
            ),
            _c("zone", _LC, "zone", "usage and adjustments only"),
            _c("service", _LC, "service"),
            _c("amount", "Int64", "s.2"),
        ),
        "(event_id, line)",
        events=(UsageRated, RatingAdjusted, Charged, GrantExpired, DebtWrittenOff),
        source=f"ARRAY JOIN {_LINES} AS s, arrayEnumerate({_LINES}) AS n WHERE {{events}}",
    ),
    Table(
        "pool_draws",
        (
            _EVENT_ID,
            _LINE,
            _c("at", _TIME, _AT),
            _WALLET,
            _c("pool_id", _LC, "d.1"),
            _c("bucket", _LC, "d.2", "the cycle, or the bundle of a stacked pool"),
            _c("zone", _LC, "zone"),
            _c("service", _LC, "service"),
            _c("volume", "Int64", "d.3"),
        ),
        "(event_id, line)",
        events=(UsageRated,),
        source="ARRAY JOIN draws AS d, arrayEnumerate(draws) AS n WHERE {events}",
    ),
    Table(
        "pool_steps",
        (
            _EVENT_ID,
            _c("at", _TIME, _AT),
            _WALLET,
            _c("pool_id", _LC, "pool_id"),
            _c("cycle", _LC, "cycle"),
            _c("tier", "UInt16", "tier"),
            _c("size", "Int64", "size"),
        ),
        "event_id",
        events=(PoolStepped,),
    ),
    Table(
        "suspensions",
        (
            _EVENT_ID,
            _c("at", _TIME, _AT),
            _WALLET,
            _c(
                "action",
                _LC,
                f"if({types(WalletSuspended)}, 'suspended', 'resumed')",
                "suspended | resumed",
            ),
            _c("balance", "Int64", "balance"),
        ),
        "event_id",
        events=(WalletSuspended, WalletResumed),
    ),
)

CATALOG: tuple[Table, ...] = (
    Table("providers", (_c("provider", "String"), _c("name", "String")), "provider"),
    Table(
        "zones",
        (_c("zone", "String"), _c("name", "String"), _c("networks", "Array(String)")),
        "zone",
    ),
    Table(
        "wallets",
        (
            _c("wallet", "String"),
            _c("name", "String"),
            _c("currency", _LC),
            _c("overdraft_limit", "Int64"),
            _c("suspend_at", "Int64"),
            _c("resume_at", "Int64"),
            _c("cycle_anchor_day", "UInt8"),
        ),
        "wallet",
    ),
    Table(
        "pools",
        (
            _c("pool_id", "String"),
            _c("wallet", _LC),
            _c("kind", _LC, note="static, flexible, stacked, adaptive"),
            _c("service", _LC),
            _c("zones", "Array(String)"),
        ),
        "pool_id",
    ),
    # A pool's allowance per cycle (or bundle), as the catalog gives it; an adaptive pool's
    # first tier here, its steps in pool_steps.
    Table(
        "pool_allowances",
        (_c("pool_id", "String"), _c("bucket", "String"), _c("allowance", "Int64")),
        "(pool_id, bucket)",
    ),
)

# The last store position applied; the largest wins.
STATE = Table(
    "projection_state",
    (_c("name", "String"), _c("position", "UInt64")),
    "name",
    engine="ReplacingMergeTree(position)",
)


def ddl(table: Table) -> str:
    """``CREATE TABLE IF NOT EXISTS`` of ``table``, each column with its note."""
    width = max(len(c.name) for c in table.columns)
    lines = []
    for n, c in enumerate(table.columns):
        line = f"    {c.name.ljust(width)} {c.type}"
        if c.default:
            line += f" DEFAULT {c.default}"
        if n < len(table.columns) - 1:
            line += ","
        if c.note:
            line += f"  -- {c.note}"
        lines.append(line)
    return (
        f"CREATE TABLE IF NOT EXISTS {table.name} (\n"
        + "\n".join(lines)
        + f"\n) ENGINE = {table.engine} ORDER BY {table.order_by}"
    )


def mapping(table: Table) -> str:
    """The materialized view that turns each block inserted into the intake into ``table``'s
    rows (``day`` and other defaults are left to ClickHouse)."""
    select = ",\n            ".join(
        c.name if c.fill == c.name else f"{c.fill} AS {c.name}"
        for c in table.columns
        if c.fill is not None
    )
    rest = (table.source or "WHERE {events}").replace("{events}", types(*table.events))
    return (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {table.name}_mapping TO {table.name} AS\n"
        f"        SELECT {select}\n        FROM {INTAKE}\n        {rest}"
    )


TABLES: dict[str, str] = {t.name: ddl(t) for t in (*FACTS, *CATALOG, STATE)}
FACT_TABLES: tuple[str, ...] = tuple(t.name for t in FACTS)
CATALOG_TABLES: tuple[str, ...] = tuple(t.name for t in CATALOG)

COLUMNS: dict[str, tuple[str, ...]] = {
    t.name: tuple(c.name for c in t.columns if c.fill is not None) for t in FACTS
}
"""The columns each mapping fills (``day`` is computed by ClickHouse)."""

CATALOG_COLUMNS: dict[str, tuple[str, ...]] = {
    t.name: tuple(c.name for c in t.columns) for t in CATALOG
}
"""The columns of the catalog tables, in the order of ``rows.catalog_rows``' tuples."""

MAPPINGS: dict[str, str] = {f"{t.name}_mapping": mapping(t) for t in FACTS}
"""One materialized view per fact table: the rows of each block inserted into the intake."""
