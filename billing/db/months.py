"""Adjustments and closed months: the two ways a statement changes, and stops changing.

An adjustment is its own append-only row (a credit or a charge to one tenant's month), with
an audit record in the same transaction. Closing a month records each tenant's totals; from
then on the ledger books any entry of that month on the day it arrives (see migration 0014),
and adjustments to it are refused, so its statements stay as they were closed."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from billing.db.audit import record
from billing.db.tables import ledger_adjustments, ledger_daily, month_closes, tenants
from billing.db.tenants import Conflict, get_tenant
from billing.pricing import exact_sum
from billing.report import money, parse_month

MONTHS_LOCK = "billing_proxy.months"  # adjustments take it shared, close-month exclusively
DEFAULT_CLOSE_GRACE = timedelta(hours=72)  # spools, background responses and retries land by then


@dataclass(frozen=True)
class Adjustment:
    id: int
    event_id: UUID
    tenant: str
    month: str
    amount_usd: Decimal
    reason: str
    actor: str
    created_at: datetime


def month_start(month: str) -> date:
    return parse_month(month)[0].date()


def current_month(now: datetime | None = None) -> str:
    return f"{(now or datetime.now(timezone.utc)):%Y-%m}"


async def _is_closed(conn: AsyncConnection, month: str) -> bool:
    return (await conn.execute(select(month_closes.c.month).where(month_closes.c.month == month_start(month)))
            ).first() is not None


async def add_adjustment(engine: AsyncEngine, tenant_name: str, amount_usd: Decimal, reason: str, *,
                         month: str | None = None, actor: str = "system") -> Adjustment:
    if amount_usd == 0:
        raise ValueError("an adjustment is a non-zero amount of USD (negative: a credit, positive: a charge)")
    if not reason.strip():
        raise ValueError("an adjustment needs a reason (it is audited and shown on the statement)")
    month = month or current_month()
    tenant = await get_tenant(engine, tenant_name)
    async with engine.begin() as conn:
        # Shared: close-month (exclusive) waits for this to commit, and this for a close.
        await conn.execute(select(func.pg_advisory_xact_lock_shared(func.hashtext(MONTHS_LOCK))))
        if await _is_closed(conn, month):
            raise Conflict(f"{month} is closed; book the adjustment in an open month (e.g. {current_month()})")
        row = (await conn.execute(
            insert(ledger_adjustments).values(tenant_id=tenant.id, month=month_start(month), amount_usd=amount_usd,
                                              reason=reason, actor=actor)
            .returning(ledger_adjustments.c.id, ledger_adjustments.c.event_id, ledger_adjustments.c.created_at))).one()
        await record(conn, actor, "ledger.adjust", f"tenant:{tenant.id}", amount_usd=amount_usd, reason=reason,
                     month=month, adjustment_id=row.id)
    return Adjustment(row.id, row.event_id, tenant.name, month, amount_usd, reason, actor, row.created_at)


async def list_adjustments(conn: AsyncConnection, month: str, tenant: str | None = None) -> list[Adjustment]:
    query = (select(ledger_adjustments, tenants.c.name.label("tenant"))
             .join(tenants, tenants.c.id == ledger_adjustments.c.tenant_id)
             .where(ledger_adjustments.c.month == month_start(month)).order_by(ledger_adjustments.c.id))
    if tenant is not None:
        query = query.where(tenants.c.name == tenant)
    return [Adjustment(r.id, r.event_id, r.tenant, month, r.amount_usd, r.reason, r.actor, r.created_at)
            for r in await conn.execute(query)]


async def month_totals(conn: AsyncConnection, month: str) -> dict[str, dict[str, str | int]]:
    """Per tenant: requests and usage charge from the rollups, adjustments, and their total."""
    start, end = parse_month(month)
    usage = {r.tenant: (int(r.requests), r.charge) for r in await conn.execute(
        select(tenants.c.name.label("tenant"), func.sum(ledger_daily.c.requests).label("requests"),
               func.sum(ledger_daily.c.charge_total).label("charge"))
        .join(tenants, tenants.c.id == ledger_daily.c.tenant_id)
        .where(ledger_daily.c.day >= start.date(), ledger_daily.c.day < end.date()).group_by(tenants.c.name))}
    adjusted: dict[str, list[Decimal]] = {}
    for adjustment in await list_adjustments(conn, month):
        adjusted.setdefault(adjustment.tenant, []).append(adjustment.amount_usd)
    totals = {}
    for tenant in sorted(set(usage) | set(adjusted)):
        requests, charge = usage.get(tenant, (0, Decimal(0)))
        adjustments = exact_sum(adjusted.get(tenant, []))
        totals[tenant] = {"requests": requests, "charge": money(charge), "adjustments": money(adjustments),
                          "total": money(charge + adjustments)}
    return totals


@dataclass(frozen=True)
class MonthClose:
    month: str
    closed_at: datetime
    actor: str
    totals: dict


async def close_month(engine: AsyncEngine, month: str, *, actor: str = "system",
                      grace: timedelta = DEFAULT_CLOSE_GRACE, now: datetime | None = None) -> MonthClose:
    _, end = parse_month(month)
    now = now or datetime.now(timezone.utc)
    if now < end + grace:
        raise Conflict(f"{month} can be closed from {end + grace:%Y-%m-%d %H:%M} UTC (its end plus a grace of "
                       f"{grace.total_seconds() / 3600:g} hours, for late spools and background responses)")
    async with engine.begin() as conn:
        await conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(MONTHS_LOCK))))  # adjustments wait
        if await _is_closed(conn, month):
            raise Conflict(f"{month} is already closed")
        # Inserts in flight commit first (their totals count here); later ones wait, then meet
        # the closed month and the trigger that books them late (ledger_guard_closed_months).
        await conn.execute(text("LOCK TABLE ledger_entries IN SHARE ROW EXCLUSIVE MODE"))
        totals = await month_totals(conn, month)
        row = (await conn.execute(insert(month_closes).values(month=month_start(month), actor=actor, totals=totals)
                                  .returning(month_closes.c.closed_at))).one()
        await conn.execute(text("SELECT ledger_guard_closed_months()"))
        await record(conn, actor, "month.close", f"month:{month}", totals=totals)
    return MonthClose(month, row.closed_at, actor, totals)


def _close(row) -> MonthClose:
    return MonthClose(f"{row.month:%Y-%m}", row.closed_at, row.actor, row.totals)


async def closed_months(engine: AsyncEngine) -> list[MonthClose]:
    async with engine.connect() as conn:
        return [_close(r) for r in await conn.execute(select(month_closes).order_by(month_closes.c.month))]


async def closed_month(engine: AsyncEngine, month: str) -> MonthClose | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(month_closes).where(month_closes.c.month == month_start(month)))).first()
    return _close(row) if row else None
