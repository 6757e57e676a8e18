"""Writing ledger entries: a batch in one statement, idempotent on the request id."""

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import DateTime, Numeric, text
from sqlalchemy import Uuid
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
    }


def _column_parsers() -> dict[str, Any]:
    parsers = {}
    for column in ledger_entries.columns:
        if isinstance(column.type, Numeric):
            parsers[column.name] = Decimal
        elif isinstance(column.type, DateTime):
            parsers[column.name] = datetime.fromisoformat
        elif isinstance(column.type, Uuid):
            parsers[column.name] = UUID
    return parsers


_PARSERS = _column_parsers()


def row_from_json(data: dict[str, Any]) -> dict[str, Any]:
    """A row as `entry_row` made it, back from its JSON form in the spool (decimals and
    times were written as strings)."""
    return {name: (_PARSERS[name](value) if value is not None and name in _PARSERS else value)
            for name, value in data.items()}


_COLUMNS = [c for c in ledger_entries.columns if c.name not in ("recorded_at", "booked_on")]  # set by the database
_JSON_COLUMNS = {"usage_flags", "raw_usage", "tool_calls"}  # sent as JSON text


def _array_type(column) -> str:
    return "jsonb" if column.name in _JSON_COLUMNS else column.type.compile(dialect=postgresql.dialect())


def _insert_sql() -> str:
    """One INSERT of a whole batch from column arrays (`unnest`): prepared once, no per-batch
    SQL. The text[] column travels as a JSON array (unnest cannot take arrays of arrays)."""
    names = [c.name for c in _COLUMNS]
    arrays = ", ".join(f"${i}::{_array_type(c)}[]" for i, c in enumerate(_COLUMNS, 1))
    selected = ", ".join(f"ARRAY(SELECT jsonb_array_elements_text(u.{n}))" if n == "usage_flags" else f"u.{n}"
                         for n in names)
    return (f"INSERT INTO ledger_entries ({', '.join(names)}) SELECT {selected} FROM unnest({arrays}) "
            f"AS u({', '.join(names)}) ON CONFLICT (request_id, started_at) DO NOTHING RETURNING request_id")


_INSERT_SQL = _insert_sql()
_months_with_partitions: set[str] = set()  # per process; forgotten after any failed insert


async def ensure_partitions(conn: AsyncConnection, rows: list[dict]) -> None:
    """Create the monthly partitions a batch needs, within its transaction (once per month
    per process: a partition, once made, stays)."""
    for month, at in {r["started_at"].strftime("%Y-%m"): r["started_at"] for r in rows}.items():
        if month not in _months_with_partitions:
            await conn.execute(text("SELECT ledger_ensure_partition(:at)"), {"at": at})
            _months_with_partitions.add(month)


async def insert_rows(conn: AsyncConnection, rows: list[dict]) -> int:
    """Insert a batch of `entry_row`s; an entry already there (same request id and start) is
    skipped, so nothing is ever billed twice. Returns how many were new.
    """
    if not rows:
        return 0
    try:
        await ensure_partitions(conn, rows)
        # Row triggers settle quotas in row order: sorting keeps every writer locking tenant and
        # key counters in one order, so concurrent batches cannot deadlock.
        ordered = sorted(rows, key=lambda r: (r["tenant_id"], r["key_id"]))
        arrays = [[orjson.dumps(r[c.name]).decode() for r in ordered] if c.name in _JSON_COLUMNS
                  else [r[c.name] for r in ordered] for c in _COLUMNS]
        driver = (await conn.get_raw_connection()).driver_connection  # asyncpg, in this transaction
        return len(await driver.fetch(_INSERT_SQL, *arrays))
    except BaseException:
        _months_with_partitions.clear()
        raise


async def insert_entries(conn: AsyncConnection, entries: list[LedgerEntry]) -> int:
    return await insert_rows(conn, [entry_row(e) for e in entries])
