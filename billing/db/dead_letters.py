"""Dead letters: rows the database refuses to store (a value it rejects, not an outage).

The ledger writer splits a refused batch until it finds the row at fault, keeps that row
here with the error, and goes on billing everyone else (`proxy/durability/ledger_writer.py`).
"""

from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

MAX_ERROR_CHARS = 2_000


def describe(error: BaseException) -> str:
    message = f"{type(error).__name__}: {error}".replace("\x00", "\\u0000")
    return message[:MAX_ERROR_CHARS]


_INSERT = text("""
    INSERT INTO ledger_dead_letters (kind, request_id, tenant_id, row_json, error)
    VALUES (:kind, :request_id, :tenant_id, :row_json, :error)
    ON CONFLICT (kind, request_id) DO NOTHING
""")


def _tenant_id(row: dict[str, Any]) -> int | None:
    tenant_id = row.get("tenant_id")
    return tenant_id if isinstance(tenant_id, int) and not isinstance(tenant_id, bool) \
        and -2**63 <= tenant_id < 2**63 else None


async def keep(conn: AsyncConnection, kind: str, row: dict[str, Any], error: BaseException) -> None:
    """Store a refused row (idempotent on kind and request id: a replay adds nothing), and
    give back its quota reservation, which no ledger entry will settle."""
    request_id = str(row.get("request_id"))
    await conn.execute(_INSERT, {
        "kind": kind, "request_id": request_id.replace("\x00", "\\u0000")[:200], "tenant_id": _tenant_id(row),
        "row_json": orjson.dumps(row, default=str, option=orjson.OPT_NON_STR_KEYS).decode(),
        "error": describe(error)})
    try:
        reservation = UUID(request_id)
    except ValueError:
        return
    await conn.execute(text("SELECT quota_release(:id)"), {"id": reservation})


async def dead_letters(engine: AsyncEngine) -> list[dict[str, Any]]:
    """Every dead letter, oldest first (without the row itself)."""
    async with engine.connect() as conn:
        rows = await conn.execute(text(
            "SELECT id, kind, request_id, tenant_id, error, failed_at FROM ledger_dead_letters ORDER BY id"))
        return [dict(r._mapping) for r in rows]
