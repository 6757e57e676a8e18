"""How much the quota check adds to a request: the admission statement (quota_admit)
against the cheapest possible round trip (SELECT 1) on the same connection pool, side by
side in one run.

    python bench/admission.py [--requests 2000] [--concurrency 1,16]

Uses DATABASE_URL, or the embedded PostgreSQL under a temporary BILLING_PROXY_HOME.
Creates its own database and drops it afterwards.
"""

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import text

from billing.db.engine import make_engine
from billing.db.keys import issue_key
from billing.db.migrate import upgrade_to_head
from billing.db.scratch import scratch_database, server_url
from billing.db.quota import admit
from billing.db.tenants import create_tenant
from billing.quota import Estimate


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


async def measure(name, work, requests: int, concurrency: int) -> dict:
    latencies: list[float] = []
    queue = iter(range(requests))

    async def worker():
        for _ in queue:
            started = time.perf_counter()
            await work()
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    elapsed = time.perf_counter() - started
    return {"name": name, "concurrency": concurrency, "rps": requests / elapsed,
            "p50": percentile(latencies, 50), "p99": percentile(latencies, 99)}


async def run(url: str, requests: int, levels: list[int]) -> None:
    engine = make_engine(url, pool_size=max(levels))
    tenant = await create_tenant(engine, "bench", monthly_budget_usd=Decimal("1000000"), monthly_token_quota=10**15)
    key = await issue_key(engine, "bench", monthly_budget_usd=Decimal("1000000"))
    expires = datetime.now(timezone.utc) + timedelta(hours=1)

    async def select_one():
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def admission():
        await admit(engine, request_id=uuid.uuid4(), tenant_id=tenant.id, key_id=key.id, at=datetime.now(timezone.utc),
                    estimate=Estimate(1000, 1000, Decimal("0.0001")), expires_at=expires)

    print(f"{'statement':<14}{'conc':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'p50 vs SELECT 1':>18}")
    for level in levels:
        await measure("warm-up", select_one, 200, level)
        floor = await measure("SELECT 1", select_one, requests, level)
        admitted = await measure("quota_admit", admission, requests, level)
        for row in (floor, admitted):
            ratio = row["p50"] / floor["p50"]
            print(f"{row['name']:<14}{level:>6}{row['rps']:>10.0f}{row['p50']:>9.3f}{row['p99']:>9.3f}{ratio:>17.2f}x")
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", default="1,16")
    args = parser.parse_args()
    with scratch_database(server_url(), "bench_admission") as url:
        upgrade_to_head(url)
        asyncio.run(run(url, args.requests, [int(c) for c in args.concurrency.split(",")]))

if __name__ == "__main__":
    main()
