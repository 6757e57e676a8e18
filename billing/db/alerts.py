"""Threshold alerts: recorded by the ledger's settlement trigger, delivered by the proxy.

Delivery claims due alerts with a lease (SKIP LOCKED, so replicas never send the same
alert at once), posts them outside any transaction, then marks them delivered or
schedules the next try with exponential backoff."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from billing.db.tables import alerts, tenants

MAX_BACKOFF_SECONDS = 3600


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


_COLUMNS = (alerts.c.id, tenants.c.name.label("tenant"), alerts.c.scope, alerts.c.scope_id, alerts.c.period_start,
            alerts.c.limit_kind, alerts.c.threshold, alerts.c.limit_value, alerts.c.spent, alerts.c.attempts,
            alerts.c.delivered_at, alerts.c.last_error)


async def claim_due(engine: AsyncEngine, *, lease_seconds: int = 60, limit: int = 20) -> list[Alert]:
    claim = text("""
        UPDATE alerts SET next_attempt_at = now() + make_interval(secs => :lease)
        WHERE id IN (SELECT id FROM alerts WHERE delivered_at IS NULL AND next_attempt_at <= now()
                     ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED)
        RETURNING id
    """)
    async with engine.begin() as conn:
        ids = (await conn.execute(claim, {"lease": lease_seconds, "limit": limit})).scalars().all()
        if not ids:
            return []
        rows = (await conn.execute(select(*_COLUMNS).join(tenants, tenants.c.id == alerts.c.tenant_id)
                                   .where(alerts.c.id.in_(ids)).order_by(alerts.c.id))).all()
    return [Alert(*row) for row in rows]


async def mark_delivered(engine: AsyncEngine, alert_id: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(update(alerts).where(alerts.c.id == alert_id)
                           .values(delivered_at=func.now(), attempts=alerts.c.attempts + 1, last_error=None))


async def mark_failed(engine: AsyncEngine, alert_id: int, error: str) -> None:
    backoff = func.least(func.power(2, alerts.c.attempts + 1), MAX_BACKOFF_SECONDS)
    async with engine.begin() as conn:
        await conn.execute(update(alerts).where(alerts.c.id == alert_id).values(
            attempts=alerts.c.attempts + 1, last_error=error[:500],
            next_attempt_at=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, backoff)))


async def list_alerts(engine: AsyncEngine, tenant: str | None = None, limit: int = 100) -> list[Alert]:
    query = select(*_COLUMNS).join(tenants, tenants.c.id == alerts.c.tenant_id).order_by(alerts.c.id.desc()).limit(limit)
    if tenant is not None:
        query = query.where(tenants.c.name == tenant)
    async with engine.connect() as conn:
        return [Alert(*row) for row in (await conn.execute(query)).all()]
