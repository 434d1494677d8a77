"""Every ClickHouse table and view of the projections, in one place.

Each fact table is a ``ReplacingMergeTree`` whose sorting key is the event id (with a line
number where one event gives several rows), and every view reads it ``FINAL``: a batch
delivered twice leaves two copies of a row until a merge, and ``FINAL`` counts one, exactly.
Analysts query the views, or the tables with ``FINAL``.

Money columns are ``Int64`` micro-units, as in the events; volumes are base units (bytes,
messages, seconds, units). ``at`` is the event's instant in UTC, ``day`` its UTC date.
The catalog tables (``providers``, ``zones``, ``wallets``, ``pools``, ``pool_allowances``)
are filled only when a catalog is given to the projector.
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
    "suspensions",
)
CATALOG_TABLES: tuple[str, ...] = ("providers", "zones", "wallets", "pools", "pool_allowances")
