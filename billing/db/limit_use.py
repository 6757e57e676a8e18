"""The month's limits and their counters, for the dashboard: every tenant with a monthly
budget or token quota, every key with a monthly budget, and the alert thresholds each
crossed. A tenant's month begins at midnight in its own time zone."""

from datetime import date
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from billing.limit_use import LimitUse

_PERIOD = "(CAST(:first AS date)::timestamp AT TIME ZONE t.time_zone)"  # the 1st, at midnight in the zone

_TENANTS = text(f"""
    SELECT t.id, t.name, t.monthly_budget_usd, t.monthly_token_quota, coalesce(q.spent_usd, 0) AS spent_usd,
           coalesce(q.reserved_usd, 0) AS reserved_usd, coalesce(q.spent_tokens, 0) AS spent_tokens,
           coalesce(q.reserved_tokens, 0) AS reserved_tokens
    FROM tenants t
    LEFT JOIN quota_usage q ON q.scope = 'tenant' AND q.scope_id = t.id AND q."window" = 'month'
                           AND q.period_start = {_PERIOD}
    WHERE t.monthly_budget_usd IS NOT NULL OR t.monthly_token_quota IS NOT NULL
    ORDER BY t.name""")
_KEYS = text(f"""
    SELECT k.id, k.display_prefix, t.name AS tenant, k.monthly_budget_usd, coalesce(q.spent_usd, 0) AS spent_usd,
           coalesce(q.reserved_usd, 0) AS reserved_usd
    FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
    LEFT JOIN quota_usage q ON q.scope = 'key' AND q.scope_id = k.id AND q."window" = 'month'
                           AND q.period_start = {_PERIOD}
    WHERE k.monthly_budget_usd IS NOT NULL AND k.status = 'active'
    ORDER BY t.name, k.id""")
_ALERTS = text(f"""
    SELECT a.scope, a.scope_id, a.limit_kind, array_agg(DISTINCT a.threshold ORDER BY a.threshold) AS crossed
    FROM alerts a JOIN tenants t ON t.id = a.tenant_id
    WHERE a.period_start = {_PERIOD}
    GROUP BY a.scope, a.scope_id, a.limit_kind""")


async def limit_uses(engine: AsyncEngine, first: date) -> list[LimitUse]:
    """Every monthly limit of the month beginning on `first`, with its use."""
    async with engine.connect() as conn:
        crossed = {(r.scope, r.scope_id, r.limit_kind): tuple(r.crossed)
                   for r in await conn.execute(_ALERTS, {"first": first})}
        uses = []
        for r in await conn.execute(_TENANTS, {"first": first}):
            if r.monthly_budget_usd is not None:
                uses.append(LimitUse("tenant", r.name, r.name, "budget", r.monthly_budget_usd, r.spent_usd,
                                     r.reserved_usd, crossed.get(("tenant", r.id, "budget"), ())))
            if r.monthly_token_quota is not None:
                uses.append(LimitUse("tenant", r.name, r.name, "tokens", Decimal(r.monthly_token_quota),
                                     Decimal(r.spent_tokens), Decimal(r.reserved_tokens),
                                     crossed.get(("tenant", r.id, "tokens"), ())))
        for r in await conn.execute(_KEYS, {"first": first}):
            uses.append(LimitUse("key", r.display_prefix, r.tenant, "budget", r.monthly_budget_usd, r.spent_usd,
                                 r.reserved_usd, crossed.get(("key", r.id, "budget"), ())))
    return uses
