"""Which tenant created a response or conversation id (and on which upstream)."""

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from billing.db.tables import response_owners


async def response_owner(engine: AsyncEngine, response_id: str) -> tuple[int, str, int | None] | None:
    """(tenant id, upstream name, context tokens when known) of the response, or None."""
    if "\x00" in response_id:  # PostgreSQL cannot hold a NUL in text, so no such id was ever recorded
        return None
    async with engine.connect() as conn:
        row = (await conn.execute(select(response_owners.c.tenant_id, response_owners.c.upstream,
                                         response_owners.c.context_tokens)
                                  .where(response_owners.c.response_id == response_id))).one_or_none()
    return (row.tenant_id, row.upstream, row.context_tokens) if row else None


async def record_context(engine: AsyncEngine, resource_id: str, context_tokens: int) -> None:
    """The context a continuation of a conversation reads: its latest turn's input and output."""
    async with engine.begin() as conn:
        await conn.execute(response_owners.update().where(response_owners.c.response_id == resource_id)
                           .values(context_tokens=context_tokens))


async def record_owner(engine: AsyncEngine, resource_id: str, tenant_id: int, upstream: str) -> None:
    """An id created by a call that leaves no ledger entry of its own (a conversation)."""
    async with engine.begin() as conn:
        await conn.execute(insert(response_owners).values(response_id=resource_id, tenant_id=tenant_id,
                                                          upstream=upstream).on_conflict_do_nothing())
