"""How much the quota check adds to a request: the admission statement (quota_admit)
against the cheapest possible round trip (SELECT 1) on the same connection pool, side by
side in one run; and what a budget for every end user (and one per tag value) adds to it:
the same admissions for a tenant with such budgets, alternating with the tenant's alone,
and the counters each admission writes (reservations counted in quota_usage per call).

    python bench/admission.py [--requests 2000] [--concurrency 1,16] [--rounds 3]

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

from billing.budgets import Subject, tag_subject
from billing.db.budgets import set_budget
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


async def counter_versions(engine) -> set:
    """Each quota counter row with its version (xmin): a row an admission wrote has a new one."""
    async with engine.connect() as conn:
        return set((await conn.execute(text(
            'SELECT scope, scope_id, "window", period_start, xmin::text FROM quota_usage'))).all())


async def run(url: str, requests: int, levels: list[int], rounds: int) -> None:
    engine = make_engine(url, pool_size=max(levels))
    plain = await create_tenant(engine, "bench", monthly_budget_usd=Decimal("1000000"), monthly_token_quota=10**15)
    plain_key = await issue_key(engine, "bench", monthly_budget_usd=Decimal("1000000"))
    scoped = await create_tenant(engine, "scoped", monthly_budget_usd=Decimal("1000000"), monthly_token_quota=10**15)
    scoped_key = await issue_key(engine, "scoped", monthly_budget_usd=Decimal("1000000"))
    await set_budget(engine, "scoped", Subject("user", None), "month", Decimal("1000000"))
    await set_budget(engine, "scoped", tag_subject("project=search"), "month", Decimal("1000000"))
    expires = datetime.now(timezone.utc) + timedelta(hours=1)
    users = [f"user-{n}" for n in range(100)]

    async def select_one():
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    def admission(tenant, key, user=False, tag=False):
        calls = iter(range(10**9))

        async def one():
            await admit(engine, request_id=uuid.uuid4(), tenant_id=tenant.id, key_id=key.id,
                        at=datetime.now(timezone.utc), estimate=Estimate(1000, 1000, Decimal("0.0001")),
                        expires_at=expires, user=users[next(calls) % len(users)] if user else None,
                        tags=["project=search"] if tag else None)
        return one

    variants = [("tenant alone", admission(plain, plain_key)),
                ("+ user cap", admission(scoped, scoped_key, user=True)),
                ("+ user + tag", admission(scoped, scoped_key, user=True, tag=True))]
    # Counters each admission writes (quota_usage rows it inserted or updated), one call at a time.
    for name, work in variants:
        written = []
        for _ in range(len(users) + 20):  # every user's first call, and calls of users seen before
            before = await counter_versions(engine)
            await work()
            written.append(len(await counter_versions(engine) - before))
        print(f"{name:<14} writes {min(written)}-{max(written)} quota counters per admission")
    print(f"{'statement':<14}{'conc':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'p50 vs SELECT 1':>18}")
    for level in levels:
        await measure("warm-up", select_one, 200, level)
        floor = await measure("SELECT 1", select_one, requests, level)
        admitted = await measure("quota_admit", variants[0][1], requests, level)
        for row in (floor, admitted):
            ratio = row["p50"] / floor["p50"]
            print(f"{row['name']:<14}{level:>6}{row['rps']:>10.0f}{row['p50']:>9.3f}{row['p99']:>9.3f}{ratio:>17.2f}x")
    # Paired rounds, the order flipping each round so that drift falls on all alike.
    for level in levels:
        ratios: dict[str, list[float]] = {name: [] for name, _ in variants[1:]}
        for round_ in range(rounds):
            order = variants if round_ % 2 == 0 else variants[::-1]
            p50 = {name: (await measure(name, work, requests, level))["p50"] for name, work in order}
            for name in ratios:
                ratios[name].append(p50[name] / p50["tenant alone"])
        for name, values in ratios.items():
            print(f"conc {level:>3}: {name} / tenant alone, p50: median {statistics.median(values):.3f} "
                  f"(range {min(values):.3f}-{max(values):.3f}, {rounds} rounds)")
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with scratch_database(server_url(), "bench_admission") as url:
        upgrade_to_head(url)
        asyncio.run(run(url, args.requests, [int(c) for c in args.concurrency.split(",")], args.rounds))

if __name__ == "__main__":
    main()
