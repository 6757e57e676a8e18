"""What a team reads about its own spend: daily charges from the roll-ups, a month's
counters, and its calls from the ledger."""

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from billing.db.quota import counters
from billing.self_service import Spent


async def daily_charges(engine: AsyncEngine, tenant_id: int, key_id: int | None, first: date,
                        last: date) -> list[tuple[date, str, Decimal]]:
    """(UTC day, model, charge) for days in [first, last), of the tenant or of one key."""
    async with engine.connect() as conn:
        rows = await conn.execute(text(
            "SELECT day, model, sum(charge_total) FROM ledger_daily WHERE tenant_id = :tenant "
            "AND (CAST(:key AS bigint) IS NULL OR key_id = :key) AND day >= :first AND day < :last "
            "GROUP BY day, model"), {"tenant": tenant_id, "key": key_id, "first": first, "last": last})
        return [(day, model, charge) for day, model, charge in rows]


async def month_spent(engine: AsyncEngine, scope: str, scope_id: int, period: datetime, next_period: datetime,
                      window: str = "month") -> Spent:
    """A scope's counters for the period, and the calls its ledger holds in it."""
    counted = await counters(engine, scope, scope_id, period, window)
    column = "tenant_id" if scope == "tenant" else "key_id"
    async with engine.connect() as conn:
        calls = (await conn.execute(text(
            f"SELECT count(*) FROM ledger_entries WHERE {column} = :id AND started_at >= :start "
            "AND started_at < :end"), {"id": scope_id, "start": period, "end": next_period})).scalar_one()
    return Spent(counted.spent_usd, counted.reserved_usd, counted.spent_tokens, calls)
