"""Background responses in the database: registered with their call, claimed for polling by
one replica at a time, settled once their entry is written."""

from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

RESERVATION_HOLD = timedelta(days=1)  # a queued call keeps its quota reservation this long at most

_REGISTER = text("""
    WITH queued AS (
        INSERT INTO background_responses (request_id, response_id, tenant_id, upstream, call, first_byte_ms)
        SELECT (r->>'request_id')::uuid, r->>'response_id', (r->>'tenant_id')::bigint, r->>'upstream', r->'call',
               (r->>'first_byte_ms')::integer
        FROM jsonb_array_elements(CAST(:rows AS jsonb)) r
        ON CONFLICT DO NOTHING
        RETURNING request_id, response_id, tenant_id, upstream),
    owners AS (
        INSERT INTO response_owners (response_id, tenant_id, upstream)
        SELECT response_id, tenant_id, upstream FROM queued ON CONFLICT DO NOTHING)
    UPDATE reservations SET expires_at = greatest(expires_at, now() + :hold)
    WHERE request_id IN (SELECT request_id FROM queued)
""")


async def register(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Queued calls (within the ledger writer's transaction): each is polled until it ends,
    its owner is known to every replica, and its reservation outlives the usual expiry."""
    if rows:
        await conn.execute(_REGISTER, {"rows": orjson.dumps(rows, default=str).decode(), "hold": RESERVATION_HOLD})


async def claim_due(engine: AsyncEngine, limit: int, claim_seconds: float) -> list[dict[str, Any]]:
    """Up to `limit` unsettled calls whose poll is due, claimed so no other replica polls
    them for `claim_seconds`."""
    async with engine.begin() as conn:
        rows = await conn.execute(text("""
            UPDATE background_responses SET claimed_until = now() + make_interval(secs => :claim),
                                            polls = polls + 1
            WHERE request_id IN (
                SELECT request_id FROM background_responses
                WHERE settled_at IS NULL AND next_poll_at <= now() AND coalesce(claimed_until, now()) <= now()
                ORDER BY next_poll_at LIMIT :limit FOR UPDATE SKIP LOCKED)
            RETURNING request_id, response_id, upstream, call, first_byte_ms, polls, queued_at
        """), {"claim": claim_seconds, "limit": limit})
        return [dict(r._mapping) for r in rows]


async def reschedule(engine: AsyncEngine, request_id, status: str | None, delay_seconds: float) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("""
            UPDATE background_responses SET next_poll_at = now() + make_interval(secs => :delay),
                                            claimed_until = NULL, last_status = coalesce(:status, last_status)
            WHERE request_id = :request_id
        """), {"delay": delay_seconds, "status": status, "request_id": request_id})


async def mark_settled(engine: AsyncEngine, request_id, status: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE background_responses SET settled_at = now(), last_status = :status "
                                "WHERE request_id = :request_id"), {"status": status, "request_id": request_id})


async def pending_by_response(engine: AsyncEngine, response_id: str) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(text("""
            SELECT request_id, response_id, upstream, call, first_byte_ms, polls, queued_at
            FROM background_responses WHERE response_id = :id AND settled_at IS NULL
        """), {"id": response_id})).one_or_none()
    return dict(row._mapping) if row else None


async def unsettled_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(text(
            "SELECT count(*) FROM background_responses WHERE settled_at IS NULL"))).scalar_one()
