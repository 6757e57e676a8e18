"""Tenants (teams) in the database. Every change is audited in its own transaction."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from billing.db.audit import record
from billing.db.tables import tenants
from billing.quota import check_thresholds, check_time_zone


class NotFound(LookupError):
    pass


class AlreadyExists(ValueError):
    pass


class Conflict(ValueError):
    pass


@dataclass(frozen=True)
class Tenant:
    id: int
    name: str
    status: str
    monthly_budget_usd: Decimal | None
    monthly_token_quota: int | None
    price_multiplier: Decimal
    time_zone: str
    alert_thresholds: list[int]
    created_at: datetime
    daily_budget_usd: Decimal | None = None
    weekly_budget_usd: Decimal | None = None
    daily_token_quota: int | None = None
    weekly_token_quota: int | None = None
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    prepaid: bool = False
    credit_usd: Decimal = Decimal(0)  # every top-up so far (the balance is this less what was spent)


# Limits beside the monthly ones, set and changed like them (None clears one).
LIMITS = ("daily_budget_usd", "weekly_budget_usd", "daily_token_quota", "weekly_token_quota",
          "requests_per_minute", "tokens_per_minute", "prepaid")
_COLUMNS = (tenants.c.id, tenants.c.name, tenants.c.status, tenants.c.monthly_budget_usd,
            tenants.c.monthly_token_quota, tenants.c.price_multiplier, tenants.c.time_zone,
            tenants.c.alert_thresholds, tenants.c.created_at, *(tenants.c[name] for name in LIMITS),
            tenants.c.credit_usd)
UNSET = object()  # "leave unchanged", as opposed to None ("clear")


def _limits(limits: dict) -> dict:
    unknown = set(limits) - set(LIMITS)
    if unknown:
        raise TypeError(f"unknown tenant limits: {sorted(unknown)}")
    return {name: value for name, value in limits.items() if value is not UNSET}


def _tenant(row) -> Tenant:
    return Tenant(*row)


def _where(tenant: str | int):
    return tenants.c.id == tenant if isinstance(tenant, int) else tenants.c.name == tenant


def _missing(tenant: str | int) -> NotFound:
    return NotFound(f"no tenant with id {tenant}" if isinstance(tenant, int) else f"no tenant named {tenant!r}")


async def create_tenant(engine: AsyncEngine, name: str, *, monthly_budget_usd: Decimal | None = None,
                        monthly_token_quota: int | None = None, price_multiplier: Decimal = Decimal(1),
                        time_zone: str = "UTC", alert_thresholds: list[int] | None = None,
                        actor: str = "system", **limits) -> Tenant:
    """A new tenant; `limits` are any of `LIMITS`."""
    limits = _limits(limits)
    check_time_zone(time_zone)
    thresholds = check_thresholds(alert_thresholds) if alert_thresholds is not None else [50, 80, 100]
    try:
        async with engine.begin() as conn:
            row = (await conn.execute(
                insert(tenants)
                .values(name=name, monthly_budget_usd=monthly_budget_usd, monthly_token_quota=monthly_token_quota,
                        price_multiplier=price_multiplier, time_zone=time_zone, alert_thresholds=thresholds,
                        **{name: value for name, value in limits.items() if value is not None})
                .returning(*_COLUMNS)
            )).one()
            await record(conn, actor, "tenant.create", f"tenant:{row.id}", name=name,
                         monthly_budget_usd=monthly_budget_usd, monthly_token_quota=monthly_token_quota,
                         price_multiplier=price_multiplier, **limits)
    except IntegrityError:
        raise AlreadyExists(f"tenant {name!r} already exists") from None
    return _tenant(row)


async def list_tenants(engine: AsyncEngine) -> list[Tenant]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(*_COLUMNS).order_by(tenants.c.name))).all()
    return [_tenant(r) for r in rows]


async def get_tenant(engine: AsyncEngine, tenant: str | int) -> Tenant:
    """A tenant by name (str) or id (int)."""
    async with engine.connect() as conn:
        row = (await conn.execute(select(*_COLUMNS).where(_where(tenant)))).one_or_none()
    if row is None:
        raise _missing(tenant)
    return _tenant(row)


async def update_tenant(engine: AsyncEngine, tenant: str | int, *, name=UNSET, monthly_budget_usd=UNSET,
                        monthly_token_quota=UNSET, status=UNSET, price_multiplier=UNSET, time_zone=UNSET,
                        alert_thresholds=UNSET, actor: str = "system", **limits) -> Tenant:
    limits = _limits(limits)
    if time_zone is not UNSET:
        check_time_zone(time_zone)
    if alert_thresholds is not UNSET:
        alert_thresholds = check_thresholds(alert_thresholds)
    values = {
        column: value
        for column, value in (("name", name), ("monthly_budget_usd", monthly_budget_usd),
                              ("monthly_token_quota", monthly_token_quota), ("status", status),
                              ("price_multiplier", price_multiplier), ("time_zone", time_zone),
                              ("alert_thresholds", alert_thresholds))
        if value is not UNSET
    } | limits
    if values.get("prepaid", False) is None:
        raise ValueError("prepaid is true or false")
    if not values:
        return await get_tenant(engine, tenant)
    action = {"suspended": "tenant.suspend", "active": "tenant.resume"}.get(values.get("status"), "tenant.update")
    try:
        async with engine.begin() as conn:
            row = (await conn.execute(update(tenants).where(_where(tenant)).values(**values)
                                      .returning(*_COLUMNS))).one_or_none()
            if row is None:
                raise _missing(tenant)
            await record(conn, actor, action, f"tenant:{row.id}", **values)
    except IntegrityError:
        raise AlreadyExists(f"tenant {values.get('name')!r} already exists") from None
    return _tenant(row)
