"""The views analysts query, over the tables of ``tables`` read ``FINAL``."""

from __future__ import annotations

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
    # Opened, closed, held by hand, and on which catalog revision: the last word of each.
    "wallet_lifecycle_status": """
        CREATE VIEW IF NOT EXISTS wallet_lifecycle_status AS
        SELECT wallet,
               anyIf(currency, action = 'opened')      AS currency,
               maxIf(by_command, action = 'opened')    AS by_command,
               minIf(at, action = 'opened')            AS opened_at,
               countIf(action = 'closed') > 0          AS closed,
               argMaxIf(action, (at, event_id), action IN ('held', 'released')) = 'held'
                                                       AS held,
               max(revision)                           AS revision
        FROM wallet_lifecycle FINAL
        GROUP BY wallet
    """,
}
"""Views in creation order (a view may read an earlier one)."""

NEW_POOL_BUCKETS = """
    SELECT DISTINCT pool_id, bucket FROM pool_draws
    WHERE (pool_id, bucket) NOT IN (SELECT pool_id, bucket FROM pool_allowances)
"""
"""The (pool, bucket) pairs drawn from whose allowance is not stored yet."""
