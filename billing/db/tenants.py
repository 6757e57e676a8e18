"""Tenants (teams) in the database."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from billing.db.tables import tenants


class NotFound(LookupError):
    pass


class AlreadyExists(ValueError):
    pass


@dataclass(frozen=True)
class Tenant:
    id: int
    name: str
    status: str
    monthly_budget_usd: Decimal | None
    monthly_token_quota: int | None
    price_multiplier: Decimal
    created_at: datetime


def _tenant(row) -> Tenant:
    return Tenant(row.id, row.name, row.status, row.monthly_budget_usd, row.monthly_token_quota,
                  row.price_multiplier, row.created_at)


_COLUMNS = (tenants.c.id, tenants.c.name, tenants.c.status, tenants.c.monthly_budget_usd,
            tenants.c.monthly_token_quota, tenants.c.price_multiplier, tenants.c.created_at)


async def create_tenant(engine: AsyncEngine, name: str, *, monthly_budget_usd: Decimal | None = None,
                        monthly_token_quota: int | None = None, price_multiplier: Decimal = Decimal(1)) -> Tenant:
    try:
        async with engine.begin() as conn:
            row = (await conn.execute(
                insert(tenants)
                .values(name=name, monthly_budget_usd=monthly_budget_usd, monthly_token_quota=monthly_token_quota,
                        price_multiplier=price_multiplier)
                .returning(*_COLUMNS)
            )).one()
    except IntegrityError:
        raise AlreadyExists(f"tenant {name!r} already exists") from None
    return _tenant(row)


async def list_tenants(engine: AsyncEngine) -> list[Tenant]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(*_COLUMNS).order_by(tenants.c.name))).all()
    return [_tenant(r) for r in rows]


async def get_tenant(engine: AsyncEngine, name: str) -> Tenant:
    async with engine.connect() as conn:
        row = (await conn.execute(select(*_COLUMNS).where(tenants.c.name == name))).one_or_none()
    if row is None:
        raise NotFound(f"no tenant named {name!r}")
    return _tenant(row)


_UNSET = object()


async def update_tenant(engine: AsyncEngine, name: str, *, monthly_budget_usd=_UNSET,
                        monthly_token_quota=_UNSET, status=_UNSET, price_multiplier=_UNSET) -> Tenant:
    values = {
        column: value
        for column, value in (("monthly_budget_usd", monthly_budget_usd),
                              ("monthly_token_quota", monthly_token_quota), ("status", status),
                              ("price_multiplier", price_multiplier))
        if value is not _UNSET
    }
    if not values:
        return await get_tenant(engine, name)
    async with engine.begin() as conn:
        row = (await conn.execute(
            update(tenants).where(tenants.c.name == name).values(**values).returning(*_COLUMNS)
        )).one_or_none()
    if row is None:
        raise NotFound(f"no tenant named {name!r}")
    return _tenant(row)
