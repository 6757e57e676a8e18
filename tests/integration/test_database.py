"""Schema, migrations, ledger idempotency and the price tables, on real PostgreSQL."""

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import asyncpg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from billing.catalog import load_catalog, shipped_catalog_path
from billing.db.engine import plain_url
from billing.db.ledger import insert_entries
from billing.db.prices import load_pricebook, set_price, sync_catalog
from billing.db.tables import ledger_entries, price_versions
from billing.ledger import CallContext, build_entry
from billing.pricebook import ResolvedPrice
from billing.pricing import PriceVersion, Tier
from billing.usage import parse_usage
from billing.db.scratch import scratch_database

NOW = datetime.now(timezone.utc)


def entry(tenant_key, version, request_id=None, **usage):
    call = CallContext(request_id=request_id or uuid.uuid4(), tenant_id=tenant_key.tenant_id,
                       key_id=tenant_key.key_id, endpoint="responses", stream=False, started_at=NOW,
                       price=ResolvedPrice("m", "m", version))
    return build_entry(call, parse_usage({"input_tokens": 10, "output_tokens": 5, **usage}), status="completed",
                       upstream_response_id="resp_x", finished_at=NOW, first_byte_ms=3)


async def priced_version(engine):
    version_id = await set_price(engine, PriceVersion("m", NOW - timedelta(days=1),
                                                      (Tier(Decimal("1.5"), Decimal("2")),), source="test"))
    async with engine.connect() as conn:
        return (await load_pricebook(conn)).version_at("m", NOW), version_id


def test_two_replicas_migrating_at_once_both_succeed(database_url):
    """The advisory lock serialises them: neither fails on half-created tables."""
    with scratch_database(database_url, "bp_migrate") as url:
        env = {**os.environ, "DATABASE_URL": url}
        replicas = [subprocess.Popen([sys.executable, "-m", "proxy.cli", "migrate"], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
        for replica in replicas:
            out, err = replica.communicate(timeout=60)
            assert replica.returncode == 0, err.decode()

        async def tables():
            conn = await asyncpg.connect(plain_url(url))
            try:
                return {r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
            finally:
                await conn.close()
        assert {"tenants", "api_keys", "price_versions", "price_tiers", "ledger_entries"} <= asyncio.run(tables())


async def test_ledger_insert_is_idempotent_on_request_id(engine, tenant_key):
    version, _ = await priced_version(engine)
    first = entry(tenant_key, version)
    async with engine.begin() as conn:
        assert await insert_entries(conn, [first, entry(tenant_key, version)]) == 2
    async with engine.begin() as conn:  # a replay of the same call
        assert await insert_entries(conn, [first]) == 0
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(ledger_entries))).scalar_one() == 2
        row = (await conn.execute(select(ledger_entries).where(ledger_entries.c.request_id == first.request_id))).one()
    # 10 x 1.5 + 5 x 2, / 1M
    assert row.cost_total == Decimal("0.000025") and row.cost_uncached_input == Decimal("0.000015")
    assert row.price_version_id == version.id and row.raw_usage == {"input_tokens": 10, "output_tokens": 5}


async def test_ledger_is_append_only(engine, tenant_key):
    version, _ = await priced_version(engine)
    async with engine.begin() as conn:
        await insert_entries(conn, [entry(tenant_key, version)])
    for statement in ("UPDATE ledger_entries SET cost_total = 0", "DELETE FROM ledger_entries"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(text(statement))


async def test_flagged_usage_is_stored_with_its_flags(engine, tenant_key):
    version, _ = await priced_version(engine)
    odd = entry(tenant_key, version, input_tokens_details={"cached_tokens": 99})
    async with engine.begin() as conn:
        await insert_entries(conn, [odd])
    async with engine.connect() as conn:
        row = (await conn.execute(select(ledger_entries))).one()
    assert row.usage_flags == ["cached_exceeds_input"] and row.cached_tokens == 10
    assert row.raw_usage["input_tokens_details"] == {"cached_tokens": 99}


async def test_catalog_sync_is_idempotent_and_operator_versions_win(engine):
    catalog = load_catalog(shipped_catalog_path())
    assert await sync_catalog(engine, catalog) == len(catalog.versions)
    assert await sync_catalog(engine, catalog) == 0
    async with engine.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(price_versions))).scalar_one()
        book = await load_pricebook(conn)
    assert count == len(catalog.versions)
    assert book.resolve("seed-1-6-250915", NOW).version.tiers[0].input == Decimal("0.25")

    later = NOW + timedelta(hours=1)
    await set_price(engine, PriceVersion("seed-1-6", later, (Tier(Decimal("0.30"), Decimal("2.50")),), source="cli"))
    async with engine.connect() as conn:
        book = await load_pricebook(conn)
    assert book.resolve("seed-1-6-250915", NOW).version.tiers[0].input == Decimal("0.25")
    assert book.resolve("seed-1-6-250915", later).version.tiers[0].input == Decimal("0.30")


async def test_a_nul_in_what_the_upstream_sent_is_stored_not_a_dead_letter(engine, tenant_key):
    """PostgreSQL text and jsonb hold no NUL; a reply that carries one is still billed."""
    version, _ = await priced_version(engine)
    odd = entry(tenant_key, version, **{"vendor\u0000field": "a\u0000b", "note": "\\u0000 stays text"})
    async with engine.begin() as conn:
        assert await insert_entries(conn, [odd]) == 1
    async with engine.connect() as conn:
        row = (await conn.execute(select(ledger_entries))).one()
    assert row.raw_usage["vendor\ufffdfield"] == "a\ufffdb" and row.raw_usage["note"] == "\\u0000 stays text"
    assert (row.input_tokens, row.output_tokens) == (10, 5)
