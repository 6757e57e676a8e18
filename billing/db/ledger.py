"""Writing ledger entries: a batch in one statement, idempotent on the request id."""

import re
from datetime import datetime
from typing import Any, Iterable

import orjson
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from billing.db.tables import ledger_entries
from billing.ledger import LedgerEntry


def entry_row(entry: LedgerEntry) -> dict:
    usage, cost = entry.usage, entry.cost
    return {
        "request_id": entry.request_id,
        "tenant_id": entry.tenant_id,
        "key_id": entry.key_id,
        "endpoint": entry.endpoint,
        "requested_model": entry.requested_model,
        "model": entry.model,
        "price_version_id": entry.price_version_id,
        "upstream_response_id": entry.upstream_response_id,
        "status": entry.status,
        "stream": entry.stream,
        "started_at": entry.started_at,
        "finished_at": entry.finished_at,
        "first_byte_ms": entry.first_byte_ms,
        "input_tokens": usage.input_tokens,
        "cached_tokens": usage.cached_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "output_tokens": usage.output_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "service_tier": usage.service_tier,
        "tool_calls": dict(usage.tool_calls),
        "cache_storage_tokens": usage.cache_storage_tokens,
        "cache_storage_hours": usage.cache_storage_hours,
        "cost_uncached_input": cost.uncached_input,
        "cost_cached_input": cost.cached_input,
        "cost_cache_write": cost.cache_write,
        "cost_output": cost.output,
        "cost_reasoning": cost.reasoning,
        "cost_tool_calls": cost.tool_calls,
        "cost_cache_storage": cost.cache_storage,
        "cost_total": cost.total,
        "price_multiplier": entry.price_multiplier,
        "charge_price_version_id": entry.charge_price_version_id,
        "charge_total": entry.charge,
        "quota_period": entry.quota_period,
        "cache_savings": entry.cache_savings,
        "estimated": entry.estimated,
        "upstream": entry.upstream,
        "usage_flags": list(usage.flags),
        "raw_usage": dict(entry.raw_usage),
        "end_user": entry.end_user,
        "tags": dict(entry.tags),
        "run_budget": entry.run_budget,
    }


_COLUMNS = [c for c in ledger_entries.columns if c.name not in ("recorded_at", "booked_on")]  # set by the database


# A JSON `\u0000` escape: one not itself escaped (preceded by an even run of backslashes).
_NUL_ESCAPE = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")


def encode_row(row: dict[str, Any]) -> bytes:
    """An `entry_row` as JSON (decimals, times and ids as strings): the form the spool keeps
    and a batch travels to the database in, so a row is encoded once. A NUL anywhere (an
    upstream's reply may carry one) becomes U+FFFD: PostgreSQL text and jsonb cannot hold
    it, and the entry would otherwise be refused, a dead letter instead of a bill."""
    encoded = orjson.dumps(row, default=str)
    return _NUL_ESCAPE.sub(rb"\1\\ufffd", encoded) if b"\\u0000" in encoded else encoded


def _insert_sql() -> str:
    """One INSERT of a whole batch sent as one JSON array: the database parses it
    (`json_to_recordset`), so the client only joins bytes it already has. In request id
    order, so two writers inserting the same entries (a replay beside a live writer) take
    their index locks in one order."""
    names = ", ".join(c.name for c in _COLUMNS)
    typed = ", ".join(f"{c.name} {c.type.compile(dialect=postgresql.dialect())}" for c in _COLUMNS)
    return (f"WITH inserted AS (INSERT INTO ledger_entries ({names}) SELECT {names} "
            f"FROM json_to_recordset(convert_from($1::bytea, 'UTF8')::json) AS u({typed}) ORDER BY request_id "
            f"ON CONFLICT (request_id, started_at) DO NOTHING RETURNING 1) SELECT count(*) FROM inserted")


_INSERT_SQL = _insert_sql()
_months_with_partitions: set[tuple[int, int]] = set()  # per process; forgotten after any failed insert


async def ensure_partitions(conn: AsyncConnection, starts: Iterable[datetime]) -> None:
    """Create the monthly partitions a batch needs, within its transaction (once per month
    per process: a partition, once made, stays)."""
    for month, at in {(at.year, at.month): at for at in starts}.items():
        if month not in _months_with_partitions:
            await conn.execute(text("SELECT ledger_ensure_partition(:at)"), {"at": at})
            _months_with_partitions.add(month)


async def insert_encoded(conn: AsyncConnection, rows: list[bytes], starts: Iterable[datetime]) -> int:
    """Insert a batch of `encode_row`s (`starts`: their started_at); an entry already there
    (same request id and start) is skipped, so nothing is ever billed twice. Returns how
    many were new."""
    if not rows:
        return 0
    try:
        await ensure_partitions(conn, starts)
        driver = (await conn.get_raw_connection()).driver_connection  # asyncpg, in this transaction
        return await driver.fetchval(_INSERT_SQL, b"[" + b",".join(rows) + b"]")
    except BaseException:
        _months_with_partitions.clear()
        raise


async def insert_rows(conn: AsyncConnection, rows: list[dict]) -> int:
    """Insert a batch of `entry_row`s (see `insert_encoded`)."""
    return await insert_encoded(conn, [encode_row(r) for r in rows], [r["started_at"] for r in rows])


async def insert_entries(conn: AsyncConnection, entries: list[LedgerEntry]) -> int:
    return await insert_rows(conn, [entry_row(e) for e in entries])
