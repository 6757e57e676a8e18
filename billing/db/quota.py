"""Quota counters in the database: admission, release, expiry, and reading them back.

Each of admit / release / expire is one statement calling a function of migration 0004,
so it is atomic however many replicas run."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from billing.db.errors import rolled_back
from billing.db.tables import quota_usage
from billing.db.tenants import Tenant
from billing.fitting import OutputLine
from billing.quota import Estimate, MonthStanding, period_start, standing


@dataclass(frozen=True)
class Admission:
    admitted: bool
    refused: str | None  # which limit (a name of billing.quota.LIMIT_NAMES)
    budget_remaining: Decimal | None  # after this request's reservation; None: no such limit
    tokens_remaining: int | None
    key_budget_remaining: Decimal | None
    offline: bool = False  # admitted against the last known state while the database was down
    estimate: Estimate | None = None  # the worst case reserved
    lease: object | None = None  # the in-memory lease that admitted it (billing.quota_lease.Lease), if any
    held_by_calls_in_flight: bool = False  # refused only for what calls in flight hold: worth a retry
    resets_at: datetime | None = None  # when the refusing limit's period ends (None: credit, never)
    requests_remaining: int | None = None
    units: int | None = None  # the per-choice output cap granted (None: the call was not fitted)
    fitted_by: str | None = None  # the limit that lowered it
    refusal_cause: str | None = None  # spent | over_left | held_in_flight
    left_usd: Decimal | None = None  # of the refusing budget: unspent, calls in flight aside
    room_usd: Decimal | None = None  # ... and what calls in flight leave of it
    left_tokens: int | None = None
    room_tokens: int | None = None
    refused_subject: str | None = None  # the end user, `name=value` or run of the budget that refused it
    scoped_remaining: Decimal | None = None  # the least left of its end user's, tags' and run's budgets


@dataclass(frozen=True)
class Counters:
    spent_usd: Decimal = Decimal(0)
    spent_tokens: int = 0
    reserved_usd: Decimal = Decimal(0)
    reserved_tokens: int = 0


_ADMIT = text("SELECT * FROM quota_admit(:request_id, :tenant_id, :key_id, :at, :usd, :tokens, :expires_at, "
              ":requests, :base_usd, :unit_usd, :base_tokens, :unit_tokens, :max_units, :min_units, :shares, :user, :tags, :run)")


@dataclass(frozen=True)
class Fitting:
    """How far admission may lower a call's output cap (`billing.fitting.OutputLine`)."""

    line: OutputLine
    min_units: int
    shares: int


async def admit(engine: AsyncEngine, *, request_id: UUID, tenant_id: int, key_id: int, at: datetime,
                estimate: Estimate, expires_at: datetime, fitting: Fitting | None = None,
                requests: int = 0, user: str | None = None, tags: list[str] | None = None,
                run: str | None = None) -> Admission:
    """Reserve `estimate` under every limit of the tenant and key in the periods containing
    `at` (the call's start), or, with `fitting`, as much of it as every limit leaves room for
    (the cap it allows is `units`), or say which limit refuses it. `requests`: the calls it
    counts against request quotas (a lease counts none). `user`, `tags` (`name=value`) and
    `run`: what of its attribution the tenant's budgets inside it may weigh."""
    line = fitting.line if fitting else None
    parameters = {"request_id": request_id, "tenant_id": tenant_id, "key_id": key_id, "at": at,
                  "usd": estimate.charge, "tokens": estimate.tokens, "expires_at": expires_at, "requests": requests,
                  "base_usd": line.base.charge if line else None, "unit_usd": line.unit_usd if line else None,
                  "base_tokens": line.base.tokens if line else None, "unit_tokens": line.unit_tokens if line else None,
                  "max_units": line.max_units if line else None, "min_units": fitting.min_units if fitting else None,
                  "shares": fitting.shares if fitting else 1, "user": user, "tags": tags, "run": run}
    for attempt in (1, 2):
        try:
            async with engine.begin() as conn:
                row = (await conn.execute(_ADMIT, parameters)).one()
            break
        except DBAPIError as error:
            # A pooled connection the server had closed, or a deadlock or serialization
            # failure that rolled the statement back (SQLSTATE class 40): nothing stayed, so
            # one retry is safe. Left to the caller, either reads as a database outage.
            if attempt == 2 or not (error.connection_invalidated or rolled_back(error)):
                raise
    fitted = line is not None and row.units is not None and row.units < line.max_units
    return Admission(row.admitted, row.refused, row.budget_remaining, row.tokens_remaining, row.key_budget_remaining,
                     estimate=line.at(row.units) if fitted and row.admitted else estimate,
                     held_by_calls_in_flight=bool(row.held_by_calls_in_flight), resets_at=row.resets_at,
                     requests_remaining=row.requests_remaining, units=row.units if fitted else None,
                     fitted_by=row.fitted_by if fitted else None, refusal_cause=row.refusal_cause,
                     left_usd=row.left_usd, room_usd=row.room_usd, left_tokens=row.left_tokens,
                     room_tokens=row.room_tokens, refused_subject=row.refused_subject,
                     scoped_remaining=row.scoped_remaining)


async def release(engine: AsyncEngine, request_id: UUID) -> bool:
    """Give a reservation back (the call never produced usage); False if there was none."""
    async with engine.begin() as conn:
        return (await conn.execute(text("SELECT quota_release(:id)"), {"id": request_id})).scalar_one()


async def settle(engine: AsyncEngine, request_id: UUID, charge: Decimal, tokens: int) -> bool:
    """A call ended: hold what it cost instead of its worst case until its ledger entry
    settles it; False if the entry already did (or it was released)."""
    async with engine.begin() as conn:
        return (await conn.execute(text("SELECT quota_settle(:id, :usd, :tokens)"),
                                   {"id": request_id, "usd": charge, "tokens": tokens})).scalar_one()


async def expire(engine: AsyncEngine) -> int:
    """Drop every reservation past its expiry (a replica died mid-request); returns how many."""
    async with engine.begin() as conn:
        return (await conn.execute(text("SELECT quota_expire()"))).scalar_one()


async def month_standing(engine: AsyncEngine, tenant: Tenant, at: datetime) -> MonthStanding:
    period = period_start(at, tenant.time_zone)
    now = await counters(engine, "tenant", tenant.id, period)
    return standing(period, tenant.time_zone, tenant.monthly_budget_usd, tenant.monthly_token_quota,
                    now.spent_usd, now.reserved_usd, now.spent_tokens, now.reserved_tokens)


async def counters(engine: AsyncEngine, scope: str, scope_id: int, period: datetime,
                   window: str = "month") -> Counters:
    async with engine.connect() as conn:
        row = (await conn.execute(
            select(quota_usage.c.spent_usd, quota_usage.c.spent_tokens, quota_usage.c.reserved_usd,
                   quota_usage.c.reserved_tokens)
            .where(quota_usage.c.scope == scope, quota_usage.c.scope_id == scope_id,
                   quota_usage.c.window == window, quota_usage.c.period_start == period)
        )).one_or_none()
    return Counters(*row) if row else Counters()
