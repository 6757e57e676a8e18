"""Tenants (teams) in the database. Every change is audited in its own transaction.

A name is normalised on the way in (`billing/operator_text.py`), and no two tenants share
a `name_key`: "Alpha" or "ａｌｐｈａ" beside "alpha" is refused as a look-alike."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from billing.db.audit import record
from billing.db.tables import tenants
from billing.operator_text import name_key, tenant_name
from billing.quota import check_thresholds, check_time_zone


class NotFound(LookupError):
    pass


class AlreadyExists(ValueError):
    pass


class Conflict(ValueError):
    pass


class LookAlike(AlreadyExists):
    """A new name that is another tenant's but for case, width or spacing."""


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
    max_call_usd: Decimal | None = None  # the most one call may cost
    fit_floor_tokens: int | None = None  # calls are not fitted below this output cap (None: the setting)
    daily_request_quota: int | None = None  # calls
    monthly_request_quota: int | None = None
    enforcement: str = "hard"  # hard: never over a limit | soft: admit while under it, report the overrun
    credit_usd: Decimal = Decimal(0)  # every top-up so far (the balance is this less what was spent)


# Limits beside the monthly ones, set and changed like them (None clears one).
LIMITS = ("daily_budget_usd", "weekly_budget_usd", "daily_token_quota", "weekly_token_quota",
          "requests_per_minute", "tokens_per_minute", "prepaid", "max_call_usd", "fit_floor_tokens",
          "daily_request_quota", "monthly_request_quota", "enforcement")
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
    if limits.get("enforcement", "hard") not in ("hard", "soft"):
        raise ValueError("enforcement is hard or soft")
    name = tenant_name(name)
    check_time_zone(time_zone)
    thresholds = check_thresholds(alert_thresholds) if alert_thresholds is not None else [50, 80, 100]
    try:
        async with engine.begin() as conn:
            await _refuse_look_alike(conn, name)
            row = (await conn.execute(
                insert(tenants)
                .values(name=name, name_key=name_key(name), monthly_budget_usd=monthly_budget_usd,
                        monthly_token_quota=monthly_token_quota, price_multiplier=price_multiplier,
                        time_zone=time_zone, alert_thresholds=thresholds,
                        **{name: value for name, value in limits.items() if value is not None})
                .returning(*_COLUMNS)
            )).one()
            await record(conn, actor, "tenant.create", f"tenant:{row.id}", name=name,
                         monthly_budget_usd=monthly_budget_usd, monthly_token_quota=monthly_token_quota,
                         price_multiplier=price_multiplier, **limits)
    except IntegrityError:
        raise await _taken(engine, name) from None
    return _tenant(row)


async def _existing_name(conn, name: str, other_than: int | None = None) -> str | None:
    """The name of the tenant (other than `other_than`) whose name key is `name`'s."""
    query = select(tenants.c.name).where(tenants.c.name_key == name_key(name))
    if other_than is not None:
        query = query.where(tenants.c.id != other_than)
    return (await conn.execute(query)).scalar_one_or_none()


def _refusal(name: str, existing: str) -> AlreadyExists:
    if existing == name:
        return AlreadyExists(f"tenant {name!r} already exists")
    return LookAlike(f"tenant name {name!r} is too like the existing tenant {existing!r} (names that differ only in "
                     "case, width or spacing are the same tenant)")


async def _refuse_look_alike(conn, name: str, other_than: int | None = None) -> None:
    existing = await _existing_name(conn, name, other_than)
    if existing is not None:
        raise _refusal(name, existing)


async def _taken(engine: AsyncEngine, name: str) -> AlreadyExists:
    """Why an insert or rename lost a race to another with the same name key."""
    async with engine.connect() as conn:
        existing = await _existing_name(conn, name)
    return _refusal(name, existing if existing is not None else name)


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
    if name is not UNSET:
        name = tenant_name(name)
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
    if name is not UNSET:
        values["name_key"] = name_key(name)
    if values.get("prepaid", False) is None:
        raise ValueError("prepaid is true or false")
    if "enforcement" in values and values["enforcement"] not in ("hard", "soft"):
        raise ValueError("enforcement is hard or soft")
    if not values:
        return await get_tenant(engine, tenant)
    action = {"suspended": "tenant.suspend", "active": "tenant.resume"}.get(values.get("status"), "tenant.update")
    try:
        async with engine.begin() as conn:
            if name is not UNSET:
                current = (await conn.execute(select(tenants.c.id).where(_where(tenant)))).scalar_one_or_none()
                if current is None:
                    raise _missing(tenant)
                await _refuse_look_alike(conn, name, other_than=current)
            row = (await conn.execute(update(tenants).where(_where(tenant)).values(**values)
                                      .returning(*_COLUMNS))).one_or_none()
            if row is None:
                raise _missing(tenant)
            audited = {k: v for k, v in values.items() if k != "name_key"}
            await record(conn, actor, action, f"tenant:{row.id}", **audited)
    except IntegrityError:
        raise await _taken(engine, name) from None
    return _tenant(row)
