"""The limits and their counters, for the dashboard: every monthly budget, token quota and
request quota of a tenant, every monthly budget and request quota of a key, and, for the month under way, the daily and weekly
ones too (the current day and week), with the alert thresholds each month's limit crossed.
A tenant's day, week and month begin at midnight in its own time zone."""

from datetime import date
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from billing.limit_use import LimitUse

# Each tenant's periods: the month that begins on :first, and today's day and week.
_PERIODS = """
    SELECT t.id, t.name, (CAST(:first AS date)::timestamp AT TIME ZONE t.time_zone) AS month_start,
           ((CAST(:first AS date) + interval '1 month')::timestamp AT TIME ZONE t.time_zone) AS month_end,
           (date_trunc('day', now() AT TIME ZONE t.time_zone) AT TIME ZONE t.time_zone) AS day_start,
           ((date_trunc('day', now() AT TIME ZONE t.time_zone) + interval '1 day') AT TIME ZONE t.time_zone) AS day_end,
           (date_trunc('week', now() AT TIME ZONE t.time_zone) AT TIME ZONE t.time_zone) AS week_start,
           ((date_trunc('week', now() AT TIME ZONE t.time_zone) + interval '1 week') AT TIME ZONE t.time_zone)
               AS week_end
    FROM tenants t"""

_LIMITS = text(f"""
    WITH p AS ({_PERIODS}),
    limits AS (
        SELECT 'tenant' AS scope, p.id AS scope_id, p.name AS label, p.name AS tenant, l.*
        FROM p JOIN tenants t ON t.id = p.id
        CROSS JOIN LATERAL (VALUES
            ('month', 'budget', t.monthly_budget_usd, p.month_start, p.month_end),
            ('month', 'tokens', t.monthly_token_quota::numeric, p.month_start, p.month_end),
            ('day', 'budget', t.daily_budget_usd, p.day_start, p.day_end),
            ('day', 'tokens', t.daily_token_quota::numeric, p.day_start, p.day_end),
            ('week', 'budget', t.weekly_budget_usd, p.week_start, p.week_end),
            ('week', 'tokens', t.weekly_token_quota::numeric, p.week_start, p.week_end),
            ('month', 'requests', t.monthly_request_quota::numeric, p.month_start, p.month_end),
            ('day', 'requests', t.daily_request_quota::numeric, p.day_start, p.day_end)
        ) l(win, kind, amount, period_start, period_end)
        UNION ALL
        SELECT 'key', k.id, k.display_prefix, p.name, l.*
        FROM api_keys k JOIN p ON p.id = k.tenant_id
        CROSS JOIN LATERAL (VALUES
            ('month', 'budget', k.monthly_budget_usd, p.month_start, p.month_end),
            ('day', 'budget', k.daily_budget_usd, p.day_start, p.day_end),
            ('week', 'budget', k.weekly_budget_usd, p.week_start, p.week_end),
            ('month', 'requests', k.monthly_request_quota::numeric, p.month_start, p.month_end),
            ('day', 'requests', k.daily_request_quota::numeric, p.day_start, p.day_end)
        ) l(win, kind, amount, period_start, period_end)
        WHERE k.status = 'active'
    )
    SELECT l.*, CASE l.kind WHEN 'budget' THEN coalesce(q.spent_usd + q.finished_usd, 0)
                            WHEN 'tokens' THEN coalesce(q.spent_tokens + q.finished_tokens, 0)
                            ELSE coalesce(q.requests, 0) END AS spent,
           CASE l.kind WHEN 'budget' THEN coalesce(q.reserved_usd - q.finished_usd, 0)
                       WHEN 'tokens' THEN coalesce(q.reserved_tokens - q.finished_tokens, 0)
                       ELSE coalesce(q.reserved_requests, 0) END AS held,
           (SELECT array_agg(DISTINCT a.threshold ORDER BY a.threshold) FROM alerts a
            WHERE l.win = 'month' AND a.scope = l.scope AND a.scope_id = l.scope_id AND a.limit_kind = l.kind
              AND a.period_start = l.period_start) AS crossed
    FROM limits l
    LEFT JOIN quota_usage q ON q.scope = l.scope AND q.scope_id = l.scope_id AND q."window" = l.win
                           AND q.period_start = l.period_start
    WHERE l.amount IS NOT NULL AND (l.win = 'month' OR :current)
    ORDER BY l.tenant, l.scope DESC, l.scope_id, l.win = 'month' DESC, l.win, l.kind""")


async def limit_uses(engine: AsyncEngine, first: date, current: bool) -> list[LimitUse]:
    """Every limit of the month beginning on `first`, with its use; with `current` (the month
    under way), today's daily and this week's weekly limits as well."""
    async with engine.connect() as conn:
        rows = await conn.execute(_LIMITS, {"first": first, "current": current})
        return [LimitUse(r.scope, r.label, r.tenant, r.kind, Decimal(r.amount), Decimal(r.spent), Decimal(r.held),
                         tuple(r.crossed or ()), r.win, r.period_start, r.period_end) for r in rows]
