"""Alerts recorded by chores rather than by the settlement trigger: a month-end forecast
past the monthly budget, and a prepaid balance under the operator's level. Each is an
`alerts` row like the others, so the once-per-threshold-and-period rule (the unique
`alerts_once`) holds whichever replica records it first.

- `forecast`: scope tenant, period the tenant's month, threshold 100, `spent` the month so
  far, `forecast_usd` the projection.
- `low_balance`: scope tenant, period from the tenant's latest top-up (a top-up starts a new
  crossing), threshold 0, `limit_value` the level, `spent` the balance."""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from billing.alert_rules import FORECAST_MIN_ELAPSED, forecast_alert_due, month_end_forecast
from billing.quota import next_period_start

_RECORD = text("""
    INSERT INTO alerts (tenant_id, scope, scope_id, period_start, limit_kind, threshold, limit_value, spent,
                        forecast_usd)
    VALUES (:tenant_id, 'tenant', :tenant_id, :period_start, :kind, :threshold, :limit_value, :spent, :forecast)
    ON CONFLICT ON CONSTRAINT alerts_once DO NOTHING
""")


async def record_forecasts(engine: AsyncEngine, now: datetime, min_elapsed=FORECAST_MIN_ELAPSED) -> int:
    """A forecast alert for each active tenant whose month, at its pace so far, ends past its
    monthly budget; returns how many were new."""
    months = text("""
        SELECT t.id, t.time_zone, t.monthly_budget_usd AS budget, q.period_start, q.spent_usd AS spent
        FROM tenants t JOIN quota_usage q ON q.scope = 'tenant' AND q.scope_id = t.id AND q."window" = 'month'
            AND q.period_start = date_trunc('month', CAST(:now AS timestamptz) AT TIME ZONE t.time_zone)
                                 AT TIME ZONE t.time_zone
        WHERE t.status = 'active' AND t.monthly_budget_usd > 0 AND q.spent_usd > 0
          AND q.spent_usd < t.monthly_budget_usd
          AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.scope = 'tenant' AND a.scope_id = t.id
                          AND a.limit_kind = 'forecast' AND a.period_start = q.period_start)
    """)
    recorded = 0
    async with engine.begin() as conn:
        for row in (await conn.execute(months, {"now": now})).all():
            end = next_period_start(row.period_start, row.time_zone)
            projected = month_end_forecast(row.spent, row.period_start, end, now, min_elapsed)
            if forecast_alert_due(row.spent, row.budget, projected):
                result = await conn.execute(_RECORD, {
                    "tenant_id": row.id, "period_start": row.period_start, "kind": "forecast", "threshold": 100,
                    "limit_value": row.budget, "spent": row.spent, "forecast": projected})
                recorded += result.rowcount
    return recorded


async def record_low_balances(engine: AsyncEngine, level: Decimal | None) -> int:
    """A low-balance alert for each active prepaid tenant whose settled balance (top-ups less
    spend; calls in flight aside) is under `level`, once per top-up; returns how many were new."""
    if level is None:
        return 0
    statement = text("""
        INSERT INTO alerts (tenant_id, scope, scope_id, period_start, limit_kind, threshold, limit_value, spent)
        SELECT t.id, 'tenant', t.id,
               coalesce((SELECT max(c.created_at) FROM credit_topups c WHERE c.tenant_id = t.id),
                        '1970-01-01 00:00:00+00'::timestamptz),
               'low_balance', 0, :level, t.credit_usd - coalesce(q.spent_usd, 0)
        FROM tenants t LEFT JOIN quota_usage q ON q.scope = 'tenant' AND q.scope_id = t.id AND q."window" = 'credit'
            AND q.period_start = '1970-01-01 00:00:00+00'::timestamptz
        WHERE t.prepaid AND t.status = 'active' AND t.credit_usd - coalesce(q.spent_usd, 0) < :level
        ON CONFLICT ON CONSTRAINT alerts_once DO NOTHING
    """)
    async with engine.begin() as conn:
        return (await conn.execute(statement, {"level": level})).rowcount
