"""Writing ledger entries: a batch in one statement, idempotent on the request id."""

from sqlalchemy import text
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


async def ensure_partitions(conn: AsyncConnection, entries: list[LedgerEntry]) -> None:
    """Create the monthly partitions a batch needs, within its transaction (when they exist,
    this is one catalog lookup per month in the batch, which rarely spans two)."""
    for at in {e.started_at.strftime("%Y-%m"): e.started_at for e in entries}.values():
        await conn.execute(text("SELECT ledger_ensure_partition(:at)"), {"at": at})


async def insert_entries(conn: AsyncConnection, entries: list[LedgerEntry]) -> int:
    """Insert a batch; an entry already there (same request id and start) is skipped, so
    nothing is ever billed twice. Returns how many were new.
    """
    if not entries:
        return 0
    await ensure_partitions(conn, entries)
    # Row triggers settle quotas in row order: sorting keeps every writer locking tenant and
    # key counters in one order, so concurrent batches cannot deadlock.
    ordered = sorted(entries, key=lambda e: (e.tenant_id, e.key_id))
    statement = (
        pg_insert(ledger_entries)
        .values([entry_row(e) for e in ordered])
        .on_conflict_do_nothing(index_elements=["request_id", "started_at"])
        .returning(ledger_entries.c.request_id)
    )
    return len((await conn.execute(statement)).all())
