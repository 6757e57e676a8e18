"""Prepaid credit: audited top-ups, and the balance they leave.

A prepaid tenant's balance is every top-up so far less what its calls cost since it became
prepaid (the `credit` window of the quota counters, settled by the ledger like the others)
less what calls in flight hold. It never resets. A top-up is its own row and an audit
record, in one transaction with the tenant's running total."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from billing.db.audit import record
from billing.db.tables import credit_topups, quota_usage, tenants
from billing.db.tenants import get_tenant

EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")  # the credit window's one period


@dataclass(frozen=True)
class TopUp:
    id: int
    amount_usd: Decimal
    reason: str
    actor: str
    created_at: datetime


@dataclass(frozen=True)
class CreditStanding:
    tenant: str
    prepaid: bool
    credited_usd: Decimal  # every top-up so far
    spent_usd: Decimal  # charged against the credit
    reserved_usd: Decimal  # held by calls in flight

    @property
    def balance_usd(self) -> Decimal:
        return self.credited_usd - self.spent_usd - self.reserved_usd


async def add_credit(engine: AsyncEngine, tenant_name: str | int, amount_usd: Decimal, reason: str, *,
                     actor: str = "system") -> TopUp:
    if not amount_usd > 0:
        raise ValueError("a top-up is a positive amount of USD")
    if not reason.strip():
        raise ValueError("a top-up needs a reason (it is audited)")
    tenant = await get_tenant(engine, tenant_name)
    async with engine.begin() as conn:
        row = (await conn.execute(
            insert(credit_topups).values(tenant_id=tenant.id, amount_usd=amount_usd, reason=reason, actor=actor)
            .returning(credit_topups.c.id, credit_topups.c.created_at))).one()
        await conn.execute(update(tenants).where(tenants.c.id == tenant.id)
                           .values(credit_usd=tenants.c.credit_usd + amount_usd))
        await record(conn, actor, "credit.add", f"tenant:{tenant.id}", amount_usd=amount_usd, reason=reason,
                     topup_id=row.id)
    return TopUp(row.id, amount_usd, reason, actor, row.created_at)


async def credit_standing(engine: AsyncEngine, tenant_name: str | int) -> CreditStanding:
    tenant = await get_tenant(engine, tenant_name)
    async with engine.connect() as conn:
        counter = (await conn.execute(
            select(quota_usage.c.spent_usd, quota_usage.c.reserved_usd)
            .where(quota_usage.c.scope == "tenant", quota_usage.c.scope_id == tenant.id,
                   quota_usage.c.window == "credit", quota_usage.c.period_start == EPOCH))).one_or_none()
    spent, reserved = counter if counter else (Decimal(0), Decimal(0))
    return CreditStanding(tenant.name, tenant.prepaid, tenant.credit_usd, spent, reserved)


async def credit_history(engine: AsyncEngine, tenant_name: str | int, limit: int = 100) -> list[TopUp]:
    tenant = await get_tenant(engine, tenant_name)
    async with engine.connect() as conn:
        rows = (await conn.execute(
            select(credit_topups.c.id, credit_topups.c.amount_usd, credit_topups.c.reason, credit_topups.c.actor,
                   credit_topups.c.created_at)
            .where(credit_topups.c.tenant_id == tenant.id).order_by(credit_topups.c.id.desc()).limit(limit))).all()
    return [TopUp(*row) for row in rows]
