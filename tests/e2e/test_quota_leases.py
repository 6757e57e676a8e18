"""Far from its limits a tenant is admitted from budget leases, in memory: a few statements
for hundreds of calls, and the ledger, the counters and the limits still agree."""

import asyncio
from datetime import datetime, timezone
from decimal import Decimal

import aiohttp
import orjson

from billing.db.keys import issue_key
from billing.db.quota import counters
from billing.db.tenants import create_tenant
from billing.quota import period_start
from proxy.gateway.admission import release_leases_now
from proxy.observability.metrics import ADMISSIONS
from tests.e2e.test_quota_two_processes import BODY, SIM_HEADERS


def admissions(path: str) -> float:
    return ADMISSIONS.labels(path)._value.get()


async def test_calls_far_from_the_limit_are_admitted_from_leases(proxy, engine):
    tenant = await create_tenant(engine, "roomy", monthly_budget_usd=Decimal("100"), monthly_token_quota=10**9)
    key = await issue_key(engine, "roomy", monthly_budget_usd=Decimal("50"))
    before = {path: admissions(path) for path in ("statement", "lease", "lease_taken")}
    headers = {"Authorization": f"Bearer {key.secret}", "Content-Type": "application/json", **SIM_HEADERS}
    remaining = []
    async with aiohttp.ClientSession() as http:
        async def one(i):
            async with http.post(proxy.url + "/v1/responses", data=orjson.dumps(BODY), headers=headers) as reply:
                assert reply.status == 200, await reply.text()
                remaining.append(Decimal(reply.headers["x-billing-budget-remaining"]))
        await one(0)  # admitted by a statement: the proxy learns how much remains
        for start in range(1, 301, 20):
            await asyncio.gather(*[one(i) for i in range(start, start + 20)])
    used = {path: admissions(path) - before[path] for path in before}
    assert used["statement"] == 1
    # A lease holds 100 worst cases; ended calls hold only their actual charge (about 60% of it).
    assert used["lease"] == 300 and 2 <= used["lease_taken"] <= 6
    assert all(Decimal(0) < r < Decimal(100) for r in remaining)

    await proxy.state.writer.flush(timeout=10)
    period = period_start(datetime.now(timezone.utc))
    tenant_now = await counters(engine, "tenant", tenant.id, period)
    assert tenant_now.reserved_usd > 0  # the active lease is still held...
    await release_leases_now(proxy.state)
    await asyncio.sleep(0.5)  # retired leases are given back in the background
    tenant_now = await counters(engine, "tenant", tenant.id, period)
    key_now = await counters(engine, "key", key.id, period)
    assert tenant_now.reserved_usd == 0 and tenant_now.reserved_tokens == 0 and key_now.reserved_usd == 0
    async with engine.connect() as conn:
        charged = (await conn.exec_driver_sql(
            "SELECT sum(charge_total), count(*) FROM ledger_entries WHERE tenant_id = %d" % tenant.id)).one()
    assert charged[1] == 301 and tenant_now.spent_usd == key_now.spent_usd == charged[0]


async def test_a_lowered_limit_applies_at_once_despite_a_lease(proxy, engine):
    from billing.db.tenants import update_tenant
    await create_tenant(engine, "shrinking", monthly_budget_usd=Decimal("100"))
    key = await issue_key(engine, "shrinking")
    headers = {"Authorization": f"Bearer {key.secret}", "Content-Type": "application/json", **SIM_HEADERS}
    async with aiohttp.ClientSession() as http:
        async def status():
            async with http.post(proxy.url + "/v1/responses", data=orjson.dumps(BODY), headers=headers) as reply:
                return reply.status
        assert [await status() for _ in range(3)] == [200, 200, 200]  # the third came from a lease
        await update_tenant(engine, "shrinking", monthly_budget_usd=Decimal("0.00001"))
        for _ in range(50):  # the mirror picks the change up within its sync interval
            if await status() == 429:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the lowered budget never applied")
