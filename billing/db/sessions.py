"""Looking up which tenant created a response id."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from billing.db.tables import response_owners


async def response_owner(engine: AsyncEngine, response_id: str) -> tuple[int, str] | None:
    """(tenant id, upstream name) of the response, or None."""
    async with engine.connect() as conn:
        row = (await conn.execute(select(response_owners.c.tenant_id, response_owners.c.upstream)
                                  .where(response_owners.c.response_id == response_id))).one_or_none()
    return (row.tenant_id, row.upstream) if row else None
