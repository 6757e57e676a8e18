"""Writing ledger entries: a batch in one statement, idempotent on the request id."""

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import DateTime, Numeric, text
from sqlalchemy import Uuid
from sqlalchemy.dialects.postgresql import insert as pg_insert
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
        "cost_uncached_input": cost.uncached_input,
        "cost_cached_input": cost.cached_input,
        "cost_cache_write": cost.cache_write,
        "cost_output": cost.output,
        "cost_reasoning": cost.reasoning,
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


async def ensure_partitions(conn: AsyncConnection, rows: list[dict]) -> None:
    """Create the monthly partitions a batch needs, within its transaction (when they exist,
    this is one catalog lookup per month in the batch, which rarely spans two)."""
    for at in {r["started_at"].strftime("%Y-%m"): r["started_at"] for r in rows}.values():
        await conn.execute(text("SELECT ledger_ensure_partition(:at)"), {"at": at})


async def insert_rows(conn: AsyncConnection, rows: list[dict]) -> int:
    """Insert a batch of `entry_row`s; an entry already there (same request id and start) is
    skipped, so nothing is ever billed twice. Returns how many were new.
    """
    if not rows:
        return 0
    await ensure_partitions(conn, rows)
    # Row triggers settle quotas in row order: sorting keeps every writer locking tenant and
    # key counters in one order, so concurrent batches cannot deadlock.
    ordered = sorted(rows, key=lambda r: (r["tenant_id"], r["key_id"]))
    statement = (
        pg_insert(ledger_entries)
        .values(ordered)
        .on_conflict_do_nothing(index_elements=["request_id", "started_at"])
        .returning(ledger_entries.c.request_id)
    )
    return len((await conn.execute(statement)).all())


async def insert_entries(conn: AsyncConnection, entries: list[LedgerEntry]) -> int:
    return await insert_rows(conn, [entry_row(e) for e in entries])
