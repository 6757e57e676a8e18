"""Calls refused as unpriced (400 `model_not_priced`) per day, tenant, key and model: added in
batches, read per model."""

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass
class Seen:
    """Calls of one model in one tally, and when the first and the last came."""

    calls: int
    first_at: datetime
    last_at: datetime


Tally = dict[tuple[date, int, int, str], Seen]  # (day, tenant id, key id, model label) -> what was seen


@dataclass(frozen=True)
class UnpricedModel:
    model: str
    calls: int
    tenants: tuple[str, ...]  # by name, sorted
    first_seen: datetime
    last_seen: datetime


async def add_unpriced(engine: AsyncEngine, tally: Tally) -> None:
    if not tally:
        return
    keys = sorted(tally)  # one order for every process: concurrent flushes cannot deadlock
    seen = [tally[k] for k in keys]
    async with engine.begin() as conn:
        await conn.execute(text("""
            INSERT INTO unpriced_calls_daily AS u (day, tenant_id, key_id, model, calls, first_at, last_at)
            SELECT * FROM unnest(CAST(:days AS date[]), CAST(:tenants AS bigint[]), CAST(:keys AS bigint[]),
                                 CAST(:models AS text[]), CAST(:calls AS bigint[]), CAST(:firsts AS timestamptz[]),
                                 CAST(:lasts AS timestamptz[]))
            ON CONFLICT (day, tenant_id, key_id, model) DO UPDATE
                SET calls = u.calls + EXCLUDED.calls, first_at = least(u.first_at, EXCLUDED.first_at),
                    last_at = greatest(u.last_at, EXCLUDED.last_at)
        """), {"days": [k[0] for k in keys], "tenants": [k[1] for k in keys], "keys": [k[2] for k in keys],
               "models": [k[3] for k in keys], "calls": [s.calls for s in seen],
               "firsts": [s.first_at for s in seen], "lasts": [s.last_at for s in seen]})


async def unpriced_models(engine: AsyncEngine, first: date, last: date, tenant: str | None = None,
                          limit: int = 100) -> list[UnpricedModel]:
    """The models refused as unpriced over the days [first, last), the most called first."""
    async with engine.connect() as conn:
        rows = await conn.execute(text("""
            SELECT u.model, sum(u.calls), array_agg(DISTINCT t.name ORDER BY t.name), min(u.first_at), max(u.last_at)
            FROM unpriced_calls_daily u JOIN tenants t ON t.id = u.tenant_id
            WHERE u.day >= :first AND u.day < :last AND (CAST(:tenant AS text) IS NULL OR t.name = :tenant)
            GROUP BY u.model ORDER BY sum(u.calls) DESC, u.model LIMIT :limit
        """), {"first": first, "last": last, "tenant": tenant, "limit": limit})
        return [UnpricedModel(model, int(calls), tuple(tenants), first_at, last_at)
                for model, calls, tenants, first_at, last_at in rows]
