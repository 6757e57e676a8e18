"""Refusals (429) per day, tenant, key and reason: added in batches, read per tenant."""

from collections import defaultdict
from datetime import date

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

Tally = dict[tuple[date, int, int, str], int]  # (day, tenant id, key id, reason) -> refusals


async def add_refusals(engine: AsyncEngine, tally: Tally) -> None:
    if not tally:
        return
    keys = sorted(tally)  # one order for every process: concurrent flushes cannot deadlock
    async with engine.begin() as conn:
        await conn.execute(text("""
            INSERT INTO refusals_daily AS r (day, tenant_id, key_id, reason, refused)
            SELECT * FROM unnest(CAST(:days AS date[]), CAST(:tenants AS bigint[]), CAST(:keys AS bigint[]),
                                 CAST(:reasons AS text[]), CAST(:counts AS bigint[]))
            ON CONFLICT (day, tenant_id, key_id, reason) DO UPDATE SET refused = r.refused + EXCLUDED.refused
        """), {"days": [k[0] for k in keys], "tenants": [k[1] for k in keys], "keys": [k[2] for k in keys],
               "reasons": [k[3] for k in keys], "counts": [tally[k] for k in keys]})


async def refusals_by_tenant(engine: AsyncEngine, first: date, last: date,
                             tenant: str | None = None) -> dict[str, dict[str, int]]:
    """Tenant name -> reason -> refusals over the days [first, last)."""
    async with engine.connect() as conn:
        rows = await conn.execute(text("""
            SELECT t.name, r.reason, sum(r.refused) FROM refusals_daily r JOIN tenants t ON t.id = r.tenant_id
            WHERE r.day >= :first AND r.day < :last AND (CAST(:tenant AS text) IS NULL OR t.name = :tenant)
            GROUP BY t.name, r.reason
        """), {"first": first, "last": last, "tenant": tenant})
        found: dict[str, dict[str, int]] = defaultdict(dict)
        for name, reason, refused in rows:
            found[name][reason] = int(refused)
    return dict(found)
