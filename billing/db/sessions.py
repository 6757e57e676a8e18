"""Looking up which tenant created a response id."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from billing.db.tables import response_owners


async def response_owner(engine: AsyncEngine, response_id: str) -> int | None:
    async with engine.connect() as conn:
        return (await conn.execute(select(response_owners.c.tenant_id)
                                   .where(response_owners.c.response_id == response_id))).scalar_one_or_none()
