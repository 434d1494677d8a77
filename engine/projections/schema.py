"""Every ClickHouse table and view of the projections, and the SQL that maps events to rows.

Each fact table is a ``ReplacingMergeTree`` whose sorting key is the event id (with a line
number where one event gives several rows), and every view reads it ``FINAL``: a batch
delivered twice leaves two copies of a row until a merge, and ``FINAL`` counts one, exactly.
Analysts query the views, or the tables with ``FINAL``.

Money columns are ``Int64`` micro-units, as in the events; volumes are base units (bytes,
messages, seconds, units). ``at`` is the event's instant in UTC, ``day`` its UTC date.
The catalog tables (``providers``, ``zones``, ``wallets``, ``pools``, ``pool_allowances``)
are filled only when a catalog is given to the projector.

Events reach ClickHouse as the JSON the store keeps (``INTAKE``, ``JSONEachRow``): ClickHouse
parses them once into the columns of ``event_intake`` (a ``Null`` table: nothing is kept), and
one materialized view per fact table (``MAPPINGS``) turns each inserted block into that
table's rows. Which events give which rows:

- ``UsageRated``: a usage fact; a revenue line per split line; a pool draw per draw; a balance
  change when it moved this wallet's money (a routed usage moves the payer's, by ``Charged``).
- ``RatingAdjusted`` (a re-rating's correction): a usage fact of kind ``adjustment`` with the
  signed differences; revenue lines of kind ``adjustment``; a balance change of
  ``credit - (debits + overdraft)``.
- ``Charged``: revenue lines of its kind (none for ``routed_usage``) and a balance change.
- ``WalletOpened``, ``GrantAdded``: a balance change (credit). ``GrantExpired``: a balance
  change and a breakage revenue line (provider ``''``: breakage is not split).
- ``PoolCycleClosed``: a pool cycle (allowance, use, overage); its true-up also gives a
  pool draw of the volume it moved into the pool, a balance change (credit) and revenue
  lines of kind ``pool_true_up`` (negative: usage charged, then given back).
- ``PoolStepped``: a pool step. ``WalletSuspended`` / ``WalletResumed``: a suspension row.
- The others (thresholds, network actions, SIM moves, rejections) give no rows.

Every row carries its event's id, so a row delivered twice is recognised.
"""

from __future__ import annotations

_FACT = "ENGINE = ReplacingMergeTree ORDER BY"

TABLES: dict[str, str] = {
    "usage_facts": f"""
        CREATE TABLE IF NOT EXISTS usage_facts (
            event_id       String,
            kind           LowCardinality(String),  -- rated | adjustment
            at             DateTime64(3, 'UTC'),
            day            Date DEFAULT toDate(at),
            wallet         LowCardinality(String),  -- where it was rated
            payer          LowCardinality(String),  -- who pays (split billing)
            cdr_id         String,
            iccid          String,
            zone           LowCardinality(String),
            service        LowCardinality(String),
            volume         Int64,
            rated_volume   Int64,
            pooled_volume  Int64,
            charged_volume Int64,
            amount         Int64,
            plan           LowCardinality(String),
            plan_version   UInt32,
            cycle          LowCardinality(String),
            filter         LowCardinality(String),  -- '' when no rating filter applied
            replay         LowCardinality(String)   -- the re-rating run of an adjustment
        ) {_FACT} event_id
    """,
    "balance_changes": f"""
        CREATE TABLE IF NOT EXISTS balance_changes (
            event_id    String,
            type        LowCardinality(String),  -- the event type
            kind        LowCardinality(String),  -- usage, mrc, top_up, voucher, expired, ...
            at          DateTime64(3, 'UTC'),
            day         Date DEFAULT toDate(at),
            wallet      LowCardinality(String),
            delta       Int64,  -- credited - debited - expired
            credited    Int64,
            debited     Int64,  -- from grants and overdraft
            expired     Int64,
            uncollected Int64   -- beyond the overdraft limit: owed, not in the balance
        ) {_FACT} event_id
    """,
    "revenue_lines": f"""
        CREATE TABLE IF NOT EXISTS revenue_lines (
            event_id String,
            line     UInt16,
            at       DateTime64(3, 'UTC'),
            day      Date DEFAULT toDate(at),
            wallet   LowCardinality(String),
            provider LowCardinality(String),  -- '' for breakage (not split among providers)
            kind     LowCardinality(String),  -- usage, mrc, addon_mrc, pool_fee, pool_step,
                                              -- restart_fee, adjustment, breakage
            zone     LowCardinality(String),  -- usage and adjustments only
            service  LowCardinality(String),
            amount   Int64
        ) {_FACT} (event_id, line)
    """,
    "pool_draws": f"""
        CREATE TABLE IF NOT EXISTS pool_draws (
            event_id String,
            line     UInt16,
            at       DateTime64(3, 'UTC'),
            wallet   LowCardinality(String),
            pool_id  LowCardinality(String),
            bucket   LowCardinality(String),  -- the cycle, or the bundle of a stacked pool
            zone     LowCardinality(String),
            service  LowCardinality(String),
            volume   Int64
        ) {_FACT} (event_id, line)
    """,
    "pool_steps": f"""
        CREATE TABLE IF NOT EXISTS pool_steps (
            event_id String,
            at       DateTime64(3, 'UTC'),
            wallet   LowCardinality(String),
            pool_id  LowCardinality(String),
            cycle    LowCardinality(String),
            tier     UInt16,
            size     Int64
        ) {_FACT} event_id
    """,
    "pool_cycles": f"""
        CREATE TABLE IF NOT EXISTS pool_cycles (
            event_id        String,
            at              DateTime64(3, 'UTC'),  -- when it closed
            wallet          LowCardinality(String),
            pool_id         LowCardinality(String),
            kind            LowCardinality(String),
            cycle           LowCardinality(String),
            allowance       Int64,  -- final: a flexible pool's counts every SIM of the cycle
            used            Int64,  -- covered by the pool, after the true-up
            overage         Int64,  -- volume rated beyond it, after the true-up
            overage_amount  Int64,  -- what that overage was charged
            credited_volume Int64,  -- overage moved into the pool at the close
            credited        Int64   -- and the money given back for it
        ) {_FACT} event_id
    """,
    "suspensions": f"""
        CREATE TABLE IF NOT EXISTS suspensions (
            event_id String,
            at       DateTime64(3, 'UTC'),
            wallet   LowCardinality(String),
            action   LowCardinality(String),  -- suspended | resumed
            balance  Int64
        ) {_FACT} event_id
    """,
    "providers": """
        CREATE TABLE IF NOT EXISTS providers (
            provider String,
            name     String
        ) ENGINE = ReplacingMergeTree ORDER BY provider
    """,
    "zones": """
        CREATE TABLE IF NOT EXISTS zones (
            zone     String,
            name     String,
            networks Array(String)
        ) ENGINE = ReplacingMergeTree ORDER BY zone
    """,
    "wallets": """
        CREATE TABLE IF NOT EXISTS wallets (
            wallet           String,
            name             String,
            currency         LowCardinality(String),
            overdraft_limit  Int64,
            suspend_at       Int64,
            resume_at        Int64,
            cycle_anchor_day UInt8
        ) ENGINE = ReplacingMergeTree ORDER BY wallet
    """,
    "pools": """
        CREATE TABLE IF NOT EXISTS pools (
            pool_id String,
            wallet  LowCardinality(String),
            kind    LowCardinality(String),  -- static, flexible, stacked, adaptive
            service LowCardinality(String),
            zones   Array(String)
        ) ENGINE = ReplacingMergeTree ORDER BY pool_id
    """,
    # A pool's allowance per cycle (or bundle), as the catalog gives it; an adaptive pool's
    # first tier here, its steps in pool_steps.
    "pool_allowances": """
        CREATE TABLE IF NOT EXISTS pool_allowances (
            pool_id   String,
            bucket    String,
            allowance Int64
        ) ENGINE = ReplacingMergeTree ORDER BY (pool_id, bucket)
    """,
    # The last store position applied; the largest wins.
    "projection_state": """
        CREATE TABLE IF NOT EXISTS projection_state (
            name     String,
            position UInt64
        ) ENGINE = ReplacingMergeTree(position) ORDER BY name
    """,
}

VIEWS: dict[str, str] = {
    "wallet_balances": """
        CREATE VIEW IF NOT EXISTS wallet_balances AS
        SELECT wallet,
               sum(delta)       AS balance,
               sum(credited)    AS credited,
               sum(debited)     AS debited,
               sum(expired)     AS expired,
               sum(uncollected) AS uncollected,
               max(at)          AS last_change
        FROM balance_changes FINAL
        GROUP BY wallet
    """,
    "wallet_balances_daily": """
        CREATE VIEW IF NOT EXISTS wallet_balances_daily AS
        SELECT wallet, day, change,
               sum(change) OVER (PARTITION BY wallet ORDER BY day) AS balance
        FROM (
            SELECT wallet, day, sum(delta) AS change
            FROM balance_changes FINAL
            GROUP BY wallet, day
        )
    """,
    "pool_usage": """
        CREATE VIEW IF NOT EXISTS pool_usage AS
        SELECT pool_id, wallet, bucket, zone, service, sum(volume) AS used
        FROM pool_draws FINAL
        GROUP BY pool_id, wallet, bucket, zone, service
    """,
    # Usage against the allowance (needs the catalog tables; allowance 0 without them).
    "pool_status": """
        CREATE VIEW IF NOT EXISTS pool_status AS
        SELECT u.pool_id AS pool_id, u.wallet AS wallet, p.kind AS kind, u.bucket AS bucket,
               u.used AS used,
               greatest(a.allowance, s.size) AS allowance,
               greatest(a.allowance, s.size) - u.used AS remaining
        FROM (
            SELECT pool_id, any(wallet) AS wallet, bucket, sum(volume) AS used
            FROM pool_draws FINAL
            GROUP BY pool_id, bucket
        ) AS u
        LEFT JOIN (SELECT pool_id, kind FROM pools FINAL) AS p ON p.pool_id = u.pool_id
        LEFT JOIN (SELECT pool_id, bucket, allowance FROM pool_allowances FINAL) AS a
            ON a.pool_id = u.pool_id AND a.bucket = u.bucket
        LEFT JOIN (
            SELECT pool_id, cycle AS bucket, max(size) AS size
            FROM pool_steps FINAL
            GROUP BY pool_id, cycle
        ) AS s ON s.pool_id = u.pool_id AND s.bucket = u.bucket
    """,
    # A closed cycle's own figures win: they count the SIMs that commands attached too.
    "pool_status_closed": """
        CREATE VIEW IF NOT EXISTS pool_status_closed AS
        SELECT st.pool_id AS pool_id, st.wallet AS wallet, st.kind AS kind,
               st.bucket AS bucket, st.used AS used,
               if(c.closed = 1, c.allowance, st.allowance) AS allowance,
               if(c.closed = 1, c.allowance, st.allowance) - st.used AS remaining,
               c.closed = 1 AS closed, c.overage AS overage, c.credited AS credited
        FROM pool_status AS st
        LEFT JOIN (
            SELECT pool_id, cycle AS bucket, 1 AS closed, allowance, overage, credited
            FROM pool_cycles FINAL
        ) AS c ON c.pool_id = st.pool_id AND c.bucket = st.bucket
    """,
    "revenue_daily": """
        CREATE VIEW IF NOT EXISTS revenue_daily AS
        SELECT day, provider, kind, zone, service, sum(amount) AS amount
        FROM revenue_lines FINAL
        GROUP BY day, provider, kind, zone, service
    """,
    "revenue_by_provider": """
        CREATE VIEW IF NOT EXISTS revenue_by_provider AS
        SELECT toStartOfMonth(day) AS month, provider, kind, sum(amount) AS amount
        FROM revenue_lines FINAL
        GROUP BY month, provider, kind
    """,
    "wallet_status": """
        CREATE VIEW IF NOT EXISTS wallet_status AS
        SELECT wallet,
               argMax(action, (at, event_id)) AS status,
               max(at)                        AS since,
               countIf(action = 'suspended')  AS suspensions,
               countIf(action = 'resumed')    AS resumes
        FROM suspensions FINAL
        GROUP BY wallet
    """,
}
"""Views in creation order (a view may read an earlier one)."""

FACT_TABLES: tuple[str, ...] = (
    "usage_facts",
    "balance_changes",
    "revenue_lines",
    "pool_draws",
    "pool_steps",
    "pool_cycles",
    "suspensions",
)
CATALOG_TABLES: tuple[str, ...] = ("providers", "zones", "wallets", "pools", "pool_allowances")


INTAKE = "event_intake"
"""Where the events' JSON is inserted; the materialized views of ``MAPPINGS`` read it."""

# The event fields any mapping reads, typed as in the events; every other field is skipped.
# A field an event leaves out (``omit_defaults``) or sets to null reads as the type's default.
INTAKE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("type", "LowCardinality(String)"),
    ("id", "String"),
    ("wallet_id", "String"),
    ("at", "DateTime64(6, 'UTC')"),
    ("cdr_id", "String"),
    ("iccid", "String"),
    ("service", "String"),
    ("zone", "String"),
    ("volume", "Int64"),
    ("rated_volume", "Int64"),
    ("pooled_volume", "Int64"),
    ("charged_volume", "Int64"),
    ("amount", "Int64"),
    ("plan", "String"),
    ("plan_version", "UInt32"),
    ("cycle", "String"),
    ("payer", "String"),
    ("filter", "String"),
    ("replay", "String"),
    ("source_wallet", "String"),
    ("kind", "String"),
    ("draws", "Array(Tuple(String, String, Int64))"),  # [pool_id, bucket, volume]
    ("debits", "Array(Tuple(String, Int64))"),  # [grant_id, amount]
    ("overdraft", "Int64"),
    ("uncollected", "Int64"),
    ("splits", "Array(Tuple(String, Int64))"),  # [provider, amount]
    ("credit", "Tuple(amount Int64)"),
    ("grant", "Tuple(kind String, amount Int64)"),
    ("grants", "Array(Tuple(amount Int64))"),
    ("pool_id", "String"),
    ("tier", "UInt16"),
    ("size", "Int64"),
    ("balance", "Int64"),
    ("allowance", "Int64"),
    ("used", "Int64"),
    ("overage", "Int64"),
    ("overage_amount", "Int64"),
    ("credited_volume", "Int64"),
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

_PARSED = (
    "Tuple("
    + ", ".join(f"{n} {k.replace('LowCardinality(String)', 'String')}" for n, k in INTAKE_COLUMNS)
    + ")"
)


def intake_from(source: str, after: int, until: int) -> str:
    """``INSERT INTO event_intake`` of the events at positions ``(after, until]`` read by
    ClickHouse itself from the table function ``source`` (e.g. ``sqlite('events.db',
    'events')``): each stored JSON payload parsed by ``JSONExtract`` into the intake's
    columns, as the ``JSONEachRow`` insert parses it (absent fields read as defaults)."""
    parsed = _PARSED.replace("'", "\\'")
    return (
        f"INSERT INTO {INTAKE} SELECT untuple(JSONExtract(toString(payload), '{parsed}')) "
        f"FROM {source} WHERE position > {int(after)} AND position <= {int(until)} "
        "ORDER BY position"
    )


# Milliseconds, rounded as the event's instant is (a DateTime64(3) keeps milliseconds).
_AT = "fromUnixTimestamp64Milli(toInt64(roundBankers(toUnixTimestamp64Micro(at) / 1000)), 'UTC')"
_DEBITED = "overdraft + arraySum(d -> d.2, debits)"
# A write-off raises the balance as a credit does: the debt it forgives is no longer owed.
_CREDITED = (
    "multiIf(type = 'WalletOpened', arraySum(g -> g.amount, grants), "
    "type = 'GrantAdded', grant.amount, "
    "type IN ('RatingAdjusted', 'PoolCycleClosed'), credit.amount, "
    f"type = 'DebtWrittenOff', {INTAKE}.amount, 0)"
)
# ``amount`` qualified: alone it would name the line's amount, the mapping's own column.
# Breakage is one line of revenue, not split among providers; a write-off is one negative
# line (provider ''), so revenue less write-offs is what was collected or is still owed.
_LINES = (
    f"multiIf(type = 'GrantExpired', [('', {INTAKE}.amount)], "
    f"type = 'DebtWrittenOff', [('', -{INTAKE}.amount)], splits)"
)

# A true-up's moved overage is drawn from the pool at the close, as one draw.
# Qualified: ``pool_id`` alone would name the mapping's own column, made from this.
_DRAWS = (
    f"if(type = 'PoolCycleClosed', [({INTAKE}.pool_id, {INTAKE}.cycle, credited_volume)], draws)"
)

_SELECTS: dict[str, tuple[dict[str, str], str]] = {
    "usage_facts": (
        {
            "event_id": "id",
            "kind": "if(type = 'UsageRated', 'rated', 'adjustment')",
            "at": _AT,
            # A correction of usage rated in another wallet (split billing) is that wallet's.
            "wallet": "if(source_wallet = '', wallet_id, source_wallet)",
            "payer": "if(type = 'UsageRated', payer, wallet_id)",
            "cdr_id": "cdr_id",
            "iccid": "iccid",
            "zone": "zone",
            "service": "service",
            "volume": "volume",
            "rated_volume": "rated_volume",
            "pooled_volume": "pooled_volume",
            "charged_volume": "charged_volume",
            "amount": "amount",
            "plan": "plan",
            "plan_version": "plan_version",
            "cycle": "cycle",
            "filter": "filter",
            "replay": "replay",
        },
        "WHERE type IN ('UsageRated', 'RatingAdjusted')",
    ),
    "balance_changes": (
        {
            "event_id": "id",
            "type": "type",
            "kind": "multiIf(type = 'UsageRated', 'usage', type = 'RatingAdjusted', 'adjustment', "
            "type = 'WalletOpened', 'opening', type = 'GrantAdded', grant.kind, "
            "type = 'GrantExpired', 'expired', type = 'DebtWrittenOff', 'written_off', "
            "type = 'PoolCycleClosed', 'pool_true_up', kind)",
            "at": _AT,
            "wallet": "wallet_id",
            "delta": "credited - debited - expired",
            "credited": _CREDITED,
            "debited": f"if(type IN ('UsageRated', 'RatingAdjusted', 'Charged'), {_DEBITED}, 0)",
            "expired": "if(type = 'GrantExpired', amount, 0)",
            "uncollected": "uncollected",
        },
        # Money moved: a usage or charge that debited or left something owed, a correction
        # that also credited, an opening with grants, every grant added or expired.
        "WHERE multiIf("
        "type IN ('UsageRated', 'Charged'), debited != 0 OR uncollected != 0, "
        "type = 'RatingAdjusted', debited != 0 OR credited != 0 OR uncollected != 0, "
        "type = 'WalletOpened', notEmpty(grants), "
        "type = 'PoolCycleClosed', credited != 0, "
        "type IN ('GrantAdded', 'GrantExpired', 'DebtWrittenOff'))",
    ),
    "revenue_lines": (
        {
            "event_id": "id",
            "line": "toUInt16(n - 1)",
            "at": _AT,
            "wallet": "wallet_id",
            "provider": "s.1",
            "kind": "multiIf(type = 'UsageRated', 'usage', type = 'RatingAdjusted', 'adjustment', "
            "type = 'GrantExpired', 'breakage', type = 'DebtWrittenOff', 'written_off', "
            "type = 'PoolCycleClosed', 'pool_true_up', kind)",
            "zone": "zone",
            "service": "service",
            "amount": "s.2",
        },
        f"ARRAY JOIN {_LINES} AS s, arrayEnumerate({_LINES}) AS n "
        "WHERE type IN ('UsageRated', 'RatingAdjusted', 'Charged', 'GrantExpired', "
        "'DebtWrittenOff', 'PoolCycleClosed')",
    ),
    "pool_draws": (
        {
            "event_id": "id",
            "line": "toUInt16(n - 1)",
            "at": _AT,
            "wallet": "wallet_id",
            "pool_id": "d.1",
            "bucket": "d.2",
            "zone": "zone",
            "service": "service",
            "volume": "d.3",
        },
        f"ARRAY JOIN {_DRAWS} AS d, arrayEnumerate({_DRAWS}) AS n "
        "WHERE type = 'UsageRated' OR (type = 'PoolCycleClosed' AND credited_volume != 0)",
    ),
    "pool_steps": (
        {
            "event_id": "id",
            "at": _AT,
            "wallet": "wallet_id",
            "pool_id": "pool_id",
            "cycle": "cycle",
            "tier": "tier",
            "size": "size",
        },
        "WHERE type = 'PoolStepped'",
    ),
    "pool_cycles": (
        {
            "event_id": "id",
            "at": _AT,
            "wallet": "wallet_id",
            "pool_id": "pool_id",
            "kind": "kind",
            "cycle": "cycle",
            "allowance": "allowance",
            "used": "used",
            "overage": "overage",
            "overage_amount": "overage_amount",
            "credited_volume": "credited_volume",
            "credited": "credit.amount",
        },
        "WHERE type = 'PoolCycleClosed'",
    ),
    "suspensions": (
        {
            "event_id": "id",
            "at": _AT,
            "wallet": "wallet_id",
            "action": "if(type = 'WalletSuspended', 'suspended', 'resumed')",
            "balance": "balance",
        },
        "WHERE type IN ('WalletSuspended', 'WalletResumed')",
    ),
}

COLUMNS: dict[str, tuple[str, ...]] = {t: tuple(cols) for t, (cols, _) in _SELECTS.items()}
"""The columns each mapping fills (``day`` is computed by ClickHouse)."""


def _mapping(table: str) -> str:
    columns, rest = _SELECTS[table]
    select = ",\n            ".join(
        name if expr == name else f"{expr} AS {name}" for name, expr in columns.items()
    )
    return (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {table}_mapping TO {table} AS\n"
        f"        SELECT {select}\n        FROM {INTAKE}\n        {rest}"
    )


MAPPINGS: dict[str, str] = {f"{t}_mapping": _mapping(t) for t in _SELECTS}
"""One materialized view per fact table: the rows of each block inserted into the intake."""

NEW_POOL_BUCKETS = """
    SELECT DISTINCT pool_id, bucket FROM pool_draws
    WHERE (pool_id, bucket) NOT IN (SELECT pool_id, bucket FROM pool_allowances)
"""
"""The (pool, bucket) pairs drawn from whose allowance is not stored yet."""
