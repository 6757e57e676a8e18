"""Budgets inside a tenant in the database: setting and removing them (with the spend of the
period so far counted in), run budgets a key makes, and reading their counters back.

Admission (`quota_admit`, migration 0023) checks them and the ledger's settlement counts
each entry in them; this module only writes the budgets themselves."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import and_, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from billing.budgets import RunBudget, RunRequest, Subject, mint_run_id
from billing.db.audit import record
from billing.db.credits import EPOCH
from billing.db.tables import quota_usage, spend_limits, spend_subjects
from billing.db.tenants import get_tenant


@dataclass(frozen=True)
class Budget:
    """A budget and, for one subject, what it has spent and holds in the period under way."""
    tenant: str
    kind: str
    subject: str | None
    window: str
    amount_usd: Decimal
    spent_usd: Decimal | None  # None: the cap of every end user (each has its own counter)
    held_usd: Decimal | None
    period_start: datetime


# Counting what a new subject spent earlier in the period. The tenant's month counter is
# locked first: every settlement of the tenant's entries locks it, so none commits between
# the count and the new subjects becoming visible to the next settlement.
_BACKFILL = text("""
    WITH p AS (SELECT * FROM quota_periods(now(), :zone)),
    fresh AS (SELECT s.id, s.kind, s.name FROM spend_subjects s WHERE s.id = ANY(:ids)),
    spent AS (
        SELECT f.id, w.win, w.period, sum(e.charge_total) AS usd, sum(e.input_tokens + e.output_tokens) AS tokens,
               count(*) FILTER (WHERE e.status <> 'credit') AS calls
        FROM ledger_entries e CROSS JOIN p
        JOIN fresh f ON (f.kind = 'user' AND e.end_user = f.name)
                     OR (f.kind = 'tag' AND jsonb_typeof(e.tags) = 'object'
                         AND e.tags ->> split_part(f.name, '=', 1) = substr(f.name, position('=' IN f.name) + 1))
        CROSS JOIN LATERAL (
            SELECT 'day' AS win, p.day_start AS period
                WHERE date_trunc('day', e.started_at AT TIME ZONE :zone) AT TIME ZONE :zone = p.day_start
            UNION ALL SELECT 'month', p.month_start
                WHERE coalesce(e.quota_period, date_trunc('month', e.started_at AT TIME ZONE :zone)
                               AT TIME ZONE :zone) = p.month_start) w
        WHERE e.tenant_id = :tenant_id AND e.started_at >= p.month_start - interval '1 day'
          AND e.started_at < p.month_end
        GROUP BY f.id, w.win, w.period)
    INSERT INTO quota_usage (scope, scope_id, "window", period_start, spent_usd, spent_tokens, reserved_usd,
                             reserved_tokens, requests)
    SELECT f.kind, s.id, s.win, s.period, s.usd, s.tokens, 0, 0, s.calls
    FROM spent s JOIN fresh f ON f.id = s.id ORDER BY f.kind, s.id, s.win
    ON CONFLICT DO NOTHING
""")


async def _lock_tenant_month(conn: AsyncConnection, tenant_id: int, zone: str) -> None:
    await conn.execute(text("""
        INSERT INTO quota_usage (scope, scope_id, "window", period_start, spent_usd, spent_tokens, reserved_usd,
                                 reserved_tokens)
        SELECT 'tenant', :id, 'month', month_start, 0, 0, 0, 0 FROM quota_periods(now(), :zone)
        ON CONFLICT DO NOTHING"""), {"id": tenant_id, "zone": zone})
    await conn.execute(text("""
        SELECT 1 FROM quota_usage q, quota_periods(now(), :zone) p
        WHERE q.scope = 'tenant' AND q.scope_id = :id AND q."window" = 'month' AND q.period_start = p.month_start
        FOR UPDATE OF q"""), {"id": tenant_id, "zone": zone})


async def _new_subjects(conn: AsyncConnection, tenant_id: int, kind: str, names: list[str]) -> list[int]:
    """Subjects made now (the ones that existed already have their counters)."""
    if not names:
        return []
    made = await conn.execute(insert(spend_subjects).values([{"tenant_id": tenant_id, "kind": kind, "name": n}
                                                             for n in names])
                              .on_conflict_do_nothing().returning(spend_subjects.c.id))
    return list(made.scalars())


async def set_budget(engine: AsyncEngine, tenant: str | int, subject: Subject, window: str, amount: Decimal,
                     actor: str = "system") -> Budget:
    """Set (or change) the budget of `subject` per `window`; what the subject spent earlier in
    the period counts against it."""
    owner = await get_tenant(engine, tenant)
    async with engine.begin() as conn:
        await _lock_tenant_month(conn, owner.id, owner.time_zone)
        values = {"tenant_id": owner.id, "kind": subject.kind, "subject": subject.name, "window": window,
                  "amount_usd": amount}
        changed = await conn.execute(spend_limits.update().where(_same(owner.id, subject, window))
                                     .values(amount_usd=amount).returning(spend_limits.c.id))
        if changed.first() is None:
            await conn.execute(insert(spend_limits).values(values))
        if subject.name is not None:
            names = [subject.name]
        else:  # every end user: those who already spent this month get their counters now
            names = list((await conn.execute(text("""
                SELECT DISTINCT e.end_user FROM ledger_entries e, quota_periods(now(), :zone) p
                WHERE e.tenant_id = :id AND e.end_user IS NOT NULL
                  AND e.started_at >= p.month_start - interval '1 day' AND e.started_at < p.month_end"""),
                {"id": owner.id, "zone": owner.time_zone})).scalars())
        fresh = await _new_subjects(conn, owner.id, subject.kind, names)
        if fresh:
            await conn.execute(_BACKFILL, {"ids": fresh, "zone": owner.time_zone, "tenant_id": owner.id})
        await record(conn, actor, "budget.set", f"tenant:{owner.id}", kind=subject.kind, subject=subject.name,
                     window=window, amount_usd=amount)
    return (await list_budgets(engine, owner.id, subject=subject, window=window))[0]


def _same(tenant_id: int, subject: Subject, window: str):
    named = spend_limits.c.subject.is_(None) if subject.name is None else spend_limits.c.subject == subject.name
    return and_(spend_limits.c.tenant_id == tenant_id, spend_limits.c.kind == subject.kind, named,
                spend_limits.c.window == window)


async def remove_budget(engine: AsyncEngine, tenant: str | int, subject: Subject, window: str,
                        actor: str = "system") -> bool:
    owner = await get_tenant(engine, tenant)
    async with engine.begin() as conn:
        removed = (await conn.execute(delete(spend_limits).where(_same(owner.id, subject, window))
                                      .returning(spend_limits.c.id))).first()
        if removed is not None:
            await record(conn, actor, "budget.remove", f"tenant:{owner.id}", kind=subject.kind,
                         subject=subject.name, window=window)
    return removed is not None


async def list_budgets(engine: AsyncEngine, tenant: str | int, *, subject: Subject | None = None,
                       window: str | None = None) -> list[Budget]:
    """The tenant's user and tag budgets, each named one with its spend in the period under way."""
    owner = await get_tenant(engine, tenant)
    query = text("""
        SELECT l.kind, l.subject, l."window", l.amount_usd,
               CASE l."window" WHEN 'day' THEN p.day_start ELSE p.month_start END AS period_start,
               q.spent_usd, q.reserved_usd
        FROM spend_limits l CROSS JOIN quota_periods(now(), :zone) p
        LEFT JOIN spend_subjects s ON s.tenant_id = l.tenant_id AND s.kind = l.kind AND s.name = l.subject
        LEFT JOIN quota_usage q ON q.scope = l.kind AND q.scope_id = s.id AND q."window" = l."window"
                               AND q.period_start = CASE l."window" WHEN 'day' THEN p.day_start ELSE p.month_start END
        WHERE l.tenant_id = :id AND l.kind IN ('user', 'tag')
          AND (CAST(:kind AS text) IS NULL OR (l.kind = :kind AND l.subject IS NOT DISTINCT FROM :subject))
          AND (CAST(:window AS text) IS NULL OR l."window" = :window)
        ORDER BY l.kind DESC, l.subject NULLS FIRST, l."window"
    """)
    async with engine.connect() as conn:
        rows = (await conn.execute(query, {"id": owner.id, "zone": owner.time_zone,
                                           "kind": subject.kind if subject else None,
                                           "subject": subject.name if subject else None, "window": window})).all()
    return [Budget(owner.name, r.kind, r.subject, r.window, r.amount_usd,
                   None if r.subject is None else (r.spent_usd or Decimal(0)),
                   None if r.subject is None else (r.reserved_usd or Decimal(0)), r.period_start) for r in rows]


async def create_run(engine: AsyncEngine, tenant_id: int, key_id: int, request: RunRequest) -> RunBudget:
    """A run budget of the key: its id is what calls name in `X-Billing-Budget`."""
    run_id = mint_run_id()
    async with engine.begin() as conn:
        row = (await conn.execute(insert(spend_limits).values(
            tenant_id=tenant_id, kind="run", subject=run_id, window="run", amount_usd=request.amount_usd,
            label=request.label, key_id=key_id, expires_at=request.expires_at)
            .returning(spend_limits.c.created_at))).one()
        await conn.execute(insert(spend_subjects).values(tenant_id=tenant_id, kind="run", name=run_id))
        await record(conn, f"key:{key_id}", "budget.run.create", f"tenant:{tenant_id}", budget=run_id,
                     amount_usd=request.amount_usd, expires_at=request.expires_at, label=request.label)
    return RunBudget(run_id, request.amount_usd, request.label, row.created_at, request.expires_at, None)


def _runs():
    counter = quota_usage.alias("counter")
    return (select(spend_limits.c.subject, spend_limits.c.amount_usd, spend_limits.c.label,
                   spend_limits.c.created_at, spend_limits.c.expires_at, spend_limits.c.closed_at,
                   func.coalesce(counter.c.spent_usd, 0).label("spent"),
                   func.coalesce(counter.c.reserved_usd, 0).label("held"),
                   func.coalesce(counter.c.requests, 0).label("calls"))
            .select_from(spend_limits
                         .join(spend_subjects, and_(spend_subjects.c.tenant_id == spend_limits.c.tenant_id,
                                                    spend_subjects.c.kind == "run",
                                                    spend_subjects.c.name == spend_limits.c.subject))
                         .outerjoin(counter, and_(counter.c.scope == "run", counter.c.scope_id == spend_subjects.c.id,
                                                  counter.c.window == "run", counter.c.period_start == EPOCH)))
            .where(spend_limits.c.kind == "run"))


def _run(row) -> RunBudget:
    return RunBudget(row.subject, row.amount_usd, row.label, row.created_at, row.expires_at, row.closed_at,
                     row.spent, row.held, row.calls)


async def get_run(engine: AsyncEngine, tenant_id: int, key_id: int, run_id: str) -> RunBudget | None:
    """The key's own run budget; another key's or tenant's is None, as an unknown one."""
    query = _runs().where(spend_limits.c.subject == run_id, spend_limits.c.tenant_id == tenant_id,
                          spend_limits.c.key_id == key_id)
    async with engine.connect() as conn:
        row = (await conn.execute(query)).one_or_none()
    return _run(row) if row is not None else None


async def list_runs(engine: AsyncEngine, tenant_id: int, key_id: int | None = None, limit: int = 100
                    ) -> list[RunBudget]:
    query = _runs().where(spend_limits.c.tenant_id == tenant_id)
    if key_id is not None:
        query = query.where(spend_limits.c.key_id == key_id)
    async with engine.connect() as conn:
        rows = (await conn.execute(query.order_by(spend_limits.c.created_at.desc(), spend_limits.c.id.desc())
                                   .limit(limit))).all()
    return [_run(r) for r in rows]


async def close_run(engine: AsyncEngine, tenant_id: int, key_id: int, run_id: str) -> RunBudget | None:
    """Close the key's run budget: calls naming it are refused from now on."""
    async with engine.begin() as conn:
        closed = (await conn.execute(spend_limits.update().where(
            spend_limits.c.kind == "run", spend_limits.c.subject == run_id, spend_limits.c.tenant_id == tenant_id,
            spend_limits.c.key_id == key_id, spend_limits.c.closed_at.is_(None))
            .values(closed_at=func.now()).returning(spend_limits.c.id))).first()
        if closed is not None:
            await record(conn, f"key:{key_id}", "budget.run.close", f"tenant:{tenant_id}", budget=run_id)
    return await get_run(engine, tenant_id, key_id, run_id)
