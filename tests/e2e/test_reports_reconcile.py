"""A month of mixed traffic: every slice of the report sums to the ledger's total to the
last digit, and `reconcile` finds no difference until something is tampered with."""

import asyncio
import itertools
from datetime import datetime, timezone
from decimal import Decimal

import openai
from sqlalchemy import func, select, text

from billing.db.keys import issue_key
from billing.db.reports import monthly_report
from billing.db.tables import ledger_entries
from billing.db.tenants import create_tenant
from proxy.cli import main

CALLS = [  # model, extra body, whether to continue the previous response (cache hit)
    ("gpt-4o-mini", {}, False),
    ("seed-1-6-250915", {"caching": {"type": "enabled"}, "thinking": {"type": "disabled"}}, False),
    ("seed-1-6-250915", {"caching": {"type": "enabled"}, "thinking": {"type": "enabled"}}, True),
    ("o4-mini", {"reasoning": {"effort": "low"}}, False),
]


async def mixed_traffic(proxy, engine):
    await create_tenant(engine, "alpha", monthly_budget_usd=Decimal("100"))
    await create_tenant(engine, "beta", price_multiplier=Decimal("1.2"), time_zone="Asia/Tokyo",
                        monthly_token_quota=10_000_000)
    await create_tenant(engine, "gamma")
    keys = [await issue_key(engine, tenant, label=f"{tenant}-{n}") for tenant in ("alpha", "beta", "gamma")
            for n in (1, 2)]
    for key in keys:
        async with openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key.secret, max_retries=0) as client:
            previous = None
            for model, extra, follow_up in CALLS:
                reply = await client.responses.create(
                    model=model, input="Summarise the gift of the magi. " * 20,
                    previous_response_id=previous.id if follow_up and previous else None,
                    extra_body=extra or None, stream=key.id % 2 == 0)
                if key.id % 2 == 0:
                    reply = [event async for event in reply][-1].response
                previous = reply
    await proxy.state.writer.flush(timeout=10)
    return len(keys) * len(CALLS)


async def test_every_slice_sums_to_the_ledger_and_reconcile_agrees(proxy, engine, database_url, monkeypatch,
                                                                  capsys):
    calls = await mixed_traffic(proxy, engine)
    month = datetime.now(timezone.utc).strftime("%Y-%m")
    async with engine.connect() as conn:
        count, cost, charge, cached, reasoning = (await conn.execute(select(
            func.count(), func.sum(ledger_entries.c.cost_total), func.sum(ledger_entries.c.charge_total),
            func.sum(ledger_entries.c.cached_tokens), func.sum(ledger_entries.c.reasoning_tokens)))).one()
    assert count == calls and cached > 0 and reasoning > 0 and charge > cost  # beta's markup

    dimensions = ("tenant", "key", "model", "day")
    slices = [()] + [combo for n in (1, 2, 3, 4) for combo in itertools.combinations(dimensions, n)]
    for by in slices:
        report = await monthly_report(engine, month, by=by)
        assert report.total_requests == count, by
        assert report.total_cost == cost and report.total_charge == charge, by
        assert sum(r.tokens["cached_tokens"] for r in report.rows) == cached, by
    savings = (await monthly_report(engine, month)).total_cache_savings
    assert savings > 0

    monkeypatch.setenv("DATABASE_URL", database_url)
    loop = asyncio.get_running_loop()  # the CLI runs its own event loop: give it a thread
    assert await loop.run_in_executor(None, main, ["reconcile", "--month", month]) == 0
    assert f"{calls} ledger entries agree" in capsys.readouterr().out
    assert await loop.run_in_executor(None, main, ["report", "--month", month, "--by", "model,day", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    charge_column = lines[0].split(",").index("charge")
    assert sum(Decimal(line.split(",")[charge_column]) for line in lines[1:]) == charge

    async with engine.begin() as conn:  # a rollup row off by one micro-dollar
        await conn.execute(text("UPDATE ledger_daily SET cost_total = cost_total + 0.000001 "
                                "WHERE ctid = (SELECT ctid FROM ledger_daily LIMIT 1)"))
        await conn.execute(text("UPDATE quota_usage SET spent_tokens = spent_tokens + 1 "
                                "WHERE scope = 'tenant' AND scope_id = (SELECT id FROM tenants WHERE name = 'alpha')"))
    assert await loop.run_in_executor(None, main, ["reconcile", "--month", month]) == 1
    captured = capsys.readouterr()
    assert "cost_total is" in captured.out and "quota counter tenant=" in captured.out
    assert "2 difference(s)" in captured.err
