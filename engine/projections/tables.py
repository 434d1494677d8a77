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
- ``PoolCycleClosed``: a pool cycle (allowance, use, overage); its true-up also gives a
  pool draw of the volume it moved into the pool, a balance change (credit) and revenue
  lines of kind ``pool_true_up`` (negative: usage charged, then given back).
- ``PoolStepped``: a pool step. ``WalletSuspended`` / ``WalletResumed``: a suspension row.
- ``WalletOpened`` (its currency, and the terms of a wallet opened by command),
  ``WalletClosed``, ``WalletHeld`` / ``WalletReleased`` (a suspension by hand and its end),
  ``CatalogAdopted`` (the catalog revision the wallet is decided with from then on): a
  wallet lifecycle row.
- The others give no rows (``intake.UNPROJECTED_EVENTS`` says why).

Every row carries its event's id, so a row delivered twice is recognised.
"""

from __future__ import annotations

from ..domain.events import (
    CatalogAdopted,
    Charged,
    DebtWrittenOff,
    GrantAdded,
    GrantExpired,
    PoolCycleClosed,
    PoolStepped,
    RatingAdjusted,
    UsageRated,
    WalletClosed,
    WalletHeld,
    WalletOpened,
    WalletReleased,
    WalletResumed,
    WalletSuspended,
)
from .columns import Column, Table, ddl, mapping
from .intake import INTAKE, types


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
    f"{types(GrantAdded)}, grant.amount, {types(RatingAdjusted, PoolCycleClosed)}, credit.amount, "
    f"{types(DebtWrittenOff)}, {INTAKE}.amount, 0)"
)
# ``amount`` qualified: alone it would name the line's amount, the mapping's own column.
# Breakage is one line of revenue, not split among providers; a write-off is one negative
# line (provider ''), so revenue less write-offs is what was collected or is still owed.
_LINES = (
    f"multiIf({types(GrantExpired)}, [('', {INTAKE}.amount)], "
    f"{types(DebtWrittenOff)}, [('', -{INTAKE}.amount)], splits)"
)
# A true-up's moved overage is drawn from the pool at the close, as one draw.
# Qualified: ``pool_id`` alone would name the mapping's own column, made from this.
_DRAWS = (
    f"if({types(PoolCycleClosed)}, [({INTAKE}.pool_id, {INTAKE}.cycle, credited_volume)], draws)"
)


def _kind(*between: tuple[type, str]) -> str:
    """A row's kind: the event's own ``kind`` (a charge's), else one named by its type."""
    named = ((UsageRated, "'usage'"), (RatingAdjusted, "'adjustment'"), *between)
    named += ((DebtWrittenOff, "'written_off'"), (PoolCycleClosed, "'pool_true_up'"))
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
            PoolCycleClosed,
        ),
        # Money moved: a usage or charge that debited or left something owed, a correction
        # that also credited, an opening with grants, every grant added or expired.
        source=(
            f"WHERE multiIf({types(UsageRated, Charged)}, debited != 0 OR uncollected != 0, "
            f"{types(RatingAdjusted)}, debited != 0 OR credited != 0 OR uncollected != 0, "
            f"{types(WalletOpened)}, notEmpty(grants), "
            f"{types(PoolCycleClosed)}, credited != 0, "
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
                "usage, mrc, addon_mrc, pool_fee, pool_step, restart_fee, adjustment, breakage, "
                "written_off, pool_true_up",
            ),
            _c("zone", _LC, "zone", "usage and adjustments only"),
            _c("service", _LC, "service"),
            _c("amount", "Int64", "s.2"),
        ),
        "(event_id, line)",
        events=(
            UsageRated,
            RatingAdjusted,
            Charged,
            GrantExpired,
            DebtWrittenOff,
            PoolCycleClosed,
        ),
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
        events=(UsageRated, PoolCycleClosed),
        source=f"ARRAY JOIN {_DRAWS} AS d, arrayEnumerate({_DRAWS}) AS n "
        f"WHERE {types(UsageRated)} OR ({types(PoolCycleClosed)} AND credited_volume != 0)",
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
        "pool_cycles",
        (
            _EVENT_ID,
            _c("at", _TIME, _AT, "when it closed"),
            _WALLET,
            _c("pool_id", _LC, "pool_id"),
            _c("kind", _LC, "kind"),
            _c("cycle", _LC, "cycle"),
            _c("allowance", "Int64", "allowance", "final: counts every SIM of the cycle"),
            _c("used", "Int64", "used", "covered by the pool, after the true-up"),
            _c("overage", "Int64", "overage", "volume rated beyond it, after the true-up"),
            _c("overage_amount", "Int64", "overage_amount", "what that overage was charged"),
            _c("credited_volume", "Int64", "credited_volume", "overage moved into the pool"),
            _c("credited", "Int64", "credit.amount", "the money given back for it"),
        ),
        "event_id",
        events=(PoolCycleClosed,),
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
    Table(
        "wallet_lifecycle",
        (
            _EVENT_ID,
            _c("at", _TIME, _AT),
            _WALLET,
            _c(
                "action",
                _LC,
                f"multiIf({types(WalletOpened)}, 'opened', {types(WalletClosed)}, 'closed', "
                f"{types(WalletHeld)}, 'held', {types(WalletReleased)}, 'released', 'adopted')",
                "opened | closed | held | released | adopted",
            ),
            _c("currency", _LC, "currency", "opened only"),
            _c("by_command", "UInt8", "terms.name != ''", "opened by OpenWallet: the terms below"),
            _c("name", "String", "terms.name"),
            _c("overdraft_limit", "Int64", "terms.overdraft_limit"),
            _c("suspend_at", "Int64", "terms.suspend_at"),
            _c("resume_at", "Int64", "terms.resume_at"),
            _c("thresholds", "Array(Int64)", "terms.thresholds"),
            _c("cycle_anchor_day", "UInt8", "terms.cycle_anchor_day"),
            _c("revision", "UInt32", "revision", "the catalog revision (0: the first)"),
            _c("digest", "String", "digest", "sha256 of the adopted revision's source"),
            _c("reason", "String", "reason", "closed, held, released: the operator's words"),
        ),
        "event_id",
        events=(WalletOpened, WalletClosed, WalletHeld, WalletReleased, CatalogAdopted),
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
