"""Report speed at scale: a month with N ledger entries (default 10 million), reported from
the daily rollups, side by side with the same sums computed from the raw entries.

    python bench/report_scale.py [--entries 10000000] [--tenants 50] [--keys-per-tenant 4]

Uses DATABASE_URL (a superuser, as the local server's postgres), or the embedded
PostgreSQL; creates its own database and drops it afterwards. The entries are generated
in bulk inside PostgreSQL with the ledger's triggers off, then rolled up with one
GROUP BY, exactly as migration 0005 builds rollups for an existing ledger; the end-user and
tag roll-ups with the backfill of migration 0024. Each entry has one of 1,000 end users
(every 10th none) and a `project` tag of 20 values (every 5th untagged) and an `env` tag.
Reports by user or by tag are timed from their roll-up and scanned from the entries,
alternating, with the ratio of the two.
"""

import argparse
import asyncio
import importlib
import statistics
import time
from datetime import datetime, timezone

import asyncpg

from billing.db.engine import make_engine, plain_url
from billing.db.migrate import upgrade_to_head
from billing.db.scratch import scratch_database, server_url
from billing.db.reports import ledger_totals, monthly_report
from billing.report import parse_month
from billing.report_dimensions import SCAN

ATTRIBUTION = importlib.import_module("migrations.versions.0024_attribution_rollups")
MONTH = "2026-10"
MODELS = ("gpt-4o-mini", "gpt-4.1", "o4-mini", "seed-1-6", "seed-1-6-flash")


async def generate(url: str, entries: int, tenants: int, keys_per_tenant: int) -> float:
    conn = await asyncpg.connect(plain_url(url))
    started = time.perf_counter()
    try:
        await conn.execute("INSERT INTO tenants (name, name_key) SELECT 'tenant-' || i, 'tenant-' || i FROM generate_series(1, $1) i", tenants)
        await conn.execute("""
            INSERT INTO api_keys (tenant_id, display_prefix, label)
            SELECT t.id, 'bpk_bench' || t.id || '_' || k, 'bench' FROM tenants t, generate_series(1, $1) k
        """, keys_per_tenant)
        await conn.execute("SELECT ledger_ensure_partition('2026-10-15')")
        await conn.execute("SET session_replication_role = replica")  # bulk load: triggers off
        await conn.execute("""
            INSERT INTO ledger_entries (request_id, tenant_id, key_id, endpoint, requested_model, model, status,
                stream, started_at, finished_at, input_tokens, cached_tokens, cache_write_tokens, output_tokens,
                reasoning_tokens, cost_uncached_input, cost_cached_input, cost_cache_write, cost_output,
                cost_reasoning, cost_total, charge_total, cache_savings, raw_usage, end_user, tags)
            SELECT gen_random_uuid(), k.tenant_id, k.id, 'responses', m.model, m.model, 'completed', i % 2 = 0,
                   ts, ts + interval '2 seconds', 1000 + i % 5000, (i % 7) * 100, 0, 200 + i % 800, (i % 3) * 50,
                   (1000 + i % 5000 - (i % 7) * 100) * 0.15 / 1000000, (i % 7) * 100 * 0.015 / 1000000, 0,
                   (200 + i % 800 - (i % 3) * 50) * 0.6 / 1000000, (i % 3) * 50 * 0.6 / 1000000,
                   ((1000 + i % 5000 - (i % 7) * 100) * 0.15 + (i % 7) * 100 * 0.015 + (200 + i % 800) * 0.6) / 1000000,
                   ((1000 + i % 5000 - (i % 7) * 100) * 0.15 + (i % 7) * 100 * 0.015 + (200 + i % 800) * 0.6) / 1000000,
                   (i % 7) * 100 * 0.135 / 1000000, '{}'::jsonb,
                   CASE WHEN i % 10 <> 0 THEN 'user-' || i % 1000 END,
                   CASE WHEN i % 5 <> 0 THEN jsonb_build_object('project', 'p' || i % 20,
                                                                'env', CASE WHEN i % 3 = 0 THEN 'dev' ELSE 'prod' END)
                   END
            FROM generate_series(1, $1) i
            CROSS JOIN LATERAL (SELECT timestamptz '2026-10-01' + (i % 2678400) * interval '1 second' AS ts) t
            JOIN LATERAL (SELECT id, tenant_id FROM api_keys ORDER BY id OFFSET (i % $2) LIMIT 1) k ON true
            JOIN LATERAL (SELECT ($3::text[])[1 + (i / 7) % 5] AS model) m ON true
        """, entries, tenants * keys_per_tenant, list(MODELS))
        await conn.execute("SET session_replication_role = origin")
        money = ("cost_uncached_input, cost_cached_input, cost_cache_write, cost_output, cost_reasoning, "
                 "cost_total, charge_total, cache_savings")
        tokens = "input_tokens, cached_tokens, cache_write_tokens, output_tokens, reasoning_tokens"
        sums = ", ".join(f"sum({c.strip()})" for c in (tokens + ", " + money).split(","))
        await conn.execute(f"""
            INSERT INTO ledger_daily (day, tenant_id, key_id, model, requests, {tokens}, {money})
            SELECT (started_at AT TIME ZONE 'UTC')::date, tenant_id, key_id, model, count(*), {sums}
            FROM ledger_entries GROUP BY 1, 2, 3, 4
        """)
        for statement in ATTRIBUTION.roll_ups("ledger_entries"):
            await conn.execute(statement)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def timed(work, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def measure(url: str, entries: int) -> None:
    engine = make_engine(url, pool_size=2)
    start, end = parse_month(MONTH)
    async with engine.connect() as conn:
        from sqlalchemy import text
        rollup_rows = (await conn.execute(text("SELECT count(*) FROM ledger_daily"))).scalar_one()
    print(f"{entries:,} entries in {MONTH}, {rollup_rows:,} rollup rows")
    raw_ms = await timed(lambda: ledger_totals(engine, start, end), repeat=1)
    print(f"{'report --by':<22}{'median ms':>10}")
    for by in ((), ("tenant",), ("model",), ("day",), ("tenant", "model"), ("key",), ("tenant", "key", "model", "day")):
        ms = await timed(lambda: monthly_report(engine, MONTH, by=by))
        print(f"{','.join(by) or '(total)':<22}{ms:>10.1f}")
    print(f"{'report --by':<22}{'roll-up ms':>11}{'scan ms':>10}{'scan/roll-up':>14}")
    for by in (("user",), ("tenant", "user"), ("tag:project",), ("tag:project", "model")):
        rolled, scanned = [], []
        for _ in range(3):  # alternating, so both see the same machine
            rolled.append(await timed(lambda: monthly_report(engine, MONTH, by=by), repeat=1))
            scanned.append(await timed(lambda: monthly_report(engine, MONTH, by=by, source=SCAN), repeat=1))
        r, s = statistics.median(rolled), statistics.median(scanned)
        print(f"{','.join(by):<22}{r:>11.1f}{s:>10.0f}{s / r:>13.0f}x")
    ms = await timed(lambda: monthly_report(engine, MONTH, by=("user", "tag:env")), repeat=1)
    print(f"{'user,tag:env (scan only)':<26}{ms:>6.0f} ms")
    print(f"{'raw ledger, for reconcile':<26}{raw_ms:>6.0f} ms (the rollups are what reports read)")
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--keys-per-tenant", type=int, default=4)
    args = parser.parse_args()
    with scratch_database(server_url(), "bench_reports") as url:
        upgrade_to_head(url)
        seconds = asyncio.run(generate(url, args.entries, args.tenants, args.keys_per_tenant))
        print(f"generated in {seconds:.0f} s ({datetime.now(timezone.utc):%Y-%m-%d})")
        asyncio.run(measure(url, args.entries))

if __name__ == "__main__":
    main()
