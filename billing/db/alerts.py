"""Threshold alerts: recorded by the ledger's settlement trigger (and, for forecasts and low
balances, by a chore: `billing/db/alert_kinds.py`), delivered by the proxy on each channel
(`billing/db/alert_deliveries.py`). An alert is delivered when every delivery is."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from billing.db.tables import alerts, tenants


@dataclass(frozen=True)
class Alert:
    id: int
    tenant: str
    scope: str
    scope_id: int
    period_start: datetime
    limit_kind: str
    threshold: int
    limit_value: Decimal
    spent: Decimal
    attempts: int
    delivered_at: datetime | None
    last_error: str | None
    forecast_usd: Decimal | None = None


_COLUMNS = (alerts.c.id, tenants.c.name.label("tenant"), alerts.c.scope, alerts.c.scope_id, alerts.c.period_start,
            alerts.c.limit_kind, alerts.c.threshold, alerts.c.limit_value, alerts.c.spent, alerts.c.attempts,
            alerts.c.delivered_at, alerts.c.last_error, alerts.c.forecast_usd)


async def list_alerts(engine: AsyncEngine, tenant: str | None = None, limit: int = 100) -> list[Alert]:
    query = select(*_COLUMNS).join(tenants, tenants.c.id == alerts.c.tenant_id).order_by(alerts.c.id.desc()).limit(limit)
    if tenant is not None:
        query = query.where(tenants.c.name == tenant)
    async with engine.connect() as conn:
        return [Alert(*row) for row in (await conn.execute(query)).all()]
