"""Ledger ingest through the project's own insert path (the `unnest` batch and its
triggers: settlement of seven quota counters, roll-up, response owners): N entries of one
tenant in batches, one writer.

    python bench/ingest.py [--entries 20000] [--batch 500] [--sinks 0]

`--sinks N` registers N export sinks first, so every entry is also queued N times in the
outbox (by the ledger's statement trigger, in the same transaction).

Uses DATABASE_URL, or the embedded PostgreSQL; creates its own database and drops it.
"""

import argparse
import asyncio
import time
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from billing.db.engine import make_engine
from billing.db.exports import register_sinks
from billing.db.keys import issue_key
from billing.db.ledger import entry_row, insert_rows
from billing.db.migrate import upgrade_to_head
from billing.db.prices import load_pricebook, set_price
from billing.db.scratch import scratch_database, server_url
from billing.db.tenants import create_tenant
from billing.ledger import CallContext, build_entry
from billing.pricing import PriceVersion, Tier
from billing.quota import period_start
from billing.usage import parse_usage


async def run(url: str, entries: int, batch: int, sinks: int) -> None:
    engine = make_engine(url, pool_size=2)
    try:
        await register_sinks(engine, {f"sink-{n}": "webhook" for n in range(sinks)})
        now = datetime.now(timezone.utc)
        tenant = await create_tenant(engine, "ingest", monthly_budget_usd=Decimal(10**6))
        key = await issue_key(engine, "ingest")
        await set_price(engine, PriceVersion("m", now - timedelta(days=40), (Tier(Decimal(1), Decimal(1)),),
                                             source="bench"))
        async with engine.connect() as conn:
            price = (await load_pricebook(conn)).resolve("m", now)
        usage = parse_usage({"input_tokens": 100, "output_tokens": 50})
        rows = [entry_row(build_entry(
            CallContext(request_id=uuid.uuid4(), tenant_id=tenant.id, key_id=key.id, endpoint="responses",
                        stream=False, started_at=now, price=price, quota_period=period_start(now), reserved=False),
            usage, status="completed", upstream_response_id=None, finished_at=now, first_byte_ms=1))
            for _ in range(entries)]
        started = time.perf_counter()
        for i in range(0, len(rows), batch):
            async with engine.begin() as conn:
                await insert_rows(conn, rows[i:i + batch])
        took = time.perf_counter() - started
        print(f"{entries} entries in batches of {batch}, {sinks} export sink(s): {entries / took:.0f} rows/s ({took * 1e6 / entries:.0f} us/row)")
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--sinks", type=int, default=0)
    args = parser.parse_args()
    with scratch_database(server_url(), "bench_ingest") as url:
        upgrade_to_head(url)
        asyncio.run(run(url, args.entries, args.batch, args.sinks))


if __name__ == "__main__":
    main()
