"""Ledger ingest through the project's own insert path (`billing.db.ledger.insert_rows` and
every trigger it fires: quota settlement, daily roll-ups, response owners, the export
outbox), with 1 and 4 concurrent writers, on one tenant and on many.

    python bench/ledger_ingest.py [--entries 20000] [--batch 500] [--tenants 16] [--sinks 0]

The entries look like a busy day: Responses calls with upstream response ids (so each one
records its owner), two keys per tenant, two models, a third of them with tool calls, and
half of them settling a quota reservation made beforehand (as a budgeted tenant's calls
do). After each run it checks that ledger = roll-ups = quota counters, exactly, and that
no reservation is left.

Uses DATABASE_URL, or the embedded PostgreSQL; creates its own database per run and drops it.
"""

import argparse
import asyncio
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import text

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

MODELS = ("model-a", "model-b")


async def _prepare(engine, entries: int, tenants: int, sinks: int) -> list[dict]:
    await register_sinks(engine, {f"sink-{n}": "webhook" for n in range(sinks)})
    now = datetime.now(timezone.utc)
    for model in MODELS:
        await set_price(engine, PriceVersion(model, now - timedelta(days=40), (Tier(Decimal("1.25"), Decimal(10)),),
                                             source="bench"))
    async with engine.connect() as conn:
        book = await load_pricebook(conn)
    owners = []
    for n in range(tenants):
        tenant = await create_tenant(engine, f"ingest-{n}", monthly_budget_usd=Decimal(10**6))
        owners += [(tenant.id, (await issue_key(engine, tenant.name)).id) for _ in range(2)]
    rows = []
    for i in range(entries):
        tenant_id, key_id = owners[i % len(owners)]
        model = MODELS[i % 2]
        raw = {"input_tokens": 100 + i % 50, "output_tokens": 50 + i % 7,
               "input_tokens_details": {"cached_tokens": 20}, "output_tokens_details": {"reasoning_tokens": 10}}
        usage = parse_usage(raw)
        if i % 3 == 0:
            usage = replace(usage, tool_calls=(("web_search_call", 1),))
        context = CallContext(request_id=uuid.uuid4(), tenant_id=tenant_id, key_id=key_id, endpoint="responses",
                              stream=False, started_at=now, price=book.resolve(model, now),
                              quota_period=period_start(now), reserved=i % 2 == 0)
        rows.append(entry_row(build_entry(context, usage, status="completed", upstream_response_id=f"resp_{i:08d}",
                                          finished_at=now, first_byte_ms=1)))
    reserved = rows[::2]  # the calls made with reserved=True
    async with engine.begin() as conn:  # the reservations the entries settle, made up front
        await conn.execute(text(
            "SELECT count(*) FROM unnest(CAST(:ids AS uuid[]), CAST(:tenants AS bigint[]), CAST(:keys AS bigint[])) "
            "AS r(id, tenant, key), LATERAL quota_admit(r.id, r.tenant, r.key, now(), 0.01, 200, "
            "now() + interval '1 hour')"),
            {"ids": [r["request_id"] for r in reserved], "tenants": [r["tenant_id"] for r in reserved],
             "keys": [r["key_id"] for r in reserved]})
    return rows


async def _write(engine, batches: list[list[dict]]) -> None:
    for batch in batches:
        async with engine.begin() as conn:
            await insert_rows(conn, batch)


async def _check(engine, rows: list[dict]) -> str:
    charged = sum((r["charge_total"] for r in rows), Decimal(0))
    tokens = sum(r["input_tokens"] + r["output_tokens"] for r in rows)
    async with engine.connect() as conn:
        ledger = (await conn.execute(text("SELECT count(*), sum(charge_total) FROM ledger_entries"))).one()
        daily = (await conn.execute(text("SELECT sum(requests), sum(charge_total) FROM ledger_daily"))).one()
        counters = (await conn.execute(text(
            "SELECT sum(spent_usd), sum(spent_tokens), sum(reserved_usd) FROM quota_usage "
            "WHERE scope = 'tenant' AND \"window\" = 'month'"))).one()
        left = (await conn.execute(text("SELECT count(*) FROM reservations"))).scalar_one()
        owners = (await conn.execute(text("SELECT count(*) FROM response_owners"))).scalar_one()
    exact = (ledger[0] == daily[0] == owners == len(rows) and ledger[1] == daily[1] == counters[0] == charged
             and counters[1] == tokens and counters[2] == 0 and left == 0)
    return "exact" if exact else f"MISMATCH ledger={tuple(ledger)} daily={tuple(daily)} counters={tuple(counters)} " \
                                 f"reservations left={left} owners={owners} expected {len(rows)} rows, {charged}"


async def run(url: str, entries: int, batch: int, writers: int, tenants: int, sinks: int) -> float:
    engine = make_engine(url, pool_size=writers + 1)
    try:
        rows = await _prepare(engine, entries, tenants, sinks)
        batches = [rows[i:i + batch] for i in range(0, len(rows), batch)]
        started = time.perf_counter()
        await asyncio.gather(*(_write(engine, batches[w::writers]) for w in range(writers)))
        took = time.perf_counter() - started
        verdict = await _check(engine, rows)
    finally:
        await engine.dispose()
    print(f"{writers} writer(s), {tenants:>2} tenant(s): {entries / took:>8,.0f} rows/s "
          f"({took * 1e6 / entries:.0f} us/row, {entries} entries in batches of {batch}, {sinks} sink(s)); {verdict}",
          flush=True)
    return entries / took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--tenants", type=int, default=16, help="the 'many tenants' case")
    parser.add_argument("--sinks", type=int, default=0, help="export sinks every entry is queued for")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    server = server_url()
    results: dict[tuple[int, int], list[float]] = {}
    for _ in range(args.rounds):
        for writers in (1, 4):
            for tenants in (1, args.tenants):
                with scratch_database(server, "bench_ledger_ingest") as url:
                    upgrade_to_head(url)
                    rate = asyncio.run(run(url, args.entries, args.batch, writers, tenants, args.sinks))
                results.setdefault((writers, tenants), []).append(rate)
    best = {case: max(rates) for case, rates in results.items()}
    one = best[(1, 1)]
    print("best of %d round(s), as a ratio of 1 writer on 1 tenant:" % args.rounds)
    for (writers, tenants), rate in best.items():
        print(f"  {writers} writer(s), {tenants:>2} tenant(s): {rate:>8,.0f} rows/s  {rate / one:.2f}x")


if __name__ == "__main__":
    main()
