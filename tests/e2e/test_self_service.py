"""A team reads its own spend with the key it calls with: NextChat-style balance calls
(`/v1/dashboard/billing/subscription` and `/usage`) and the month in the proxy's shape
(`/v1/usage`). The figures equal the ledger's, and a key never sees another tenant's."""

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import aiohttp
import openai
from sqlalchemy import text

from billing.db.keys import issue_key
from billing.db.tenants import create_tenant
from proxy.gateway.state import STATE


async def _charges(engine, where: str, value: int) -> tuple[Decimal, int]:
    async with engine.connect() as conn:
        total, calls = (await conn.execute(text(
            f"SELECT coalesce(sum(charge_total), 0), count(*) FROM ledger_entries WHERE {where} = :v"),
            {"v": value})).one()
    return total, calls


async def _get(http: aiohttp.ClientSession, url: str, secret: str) -> tuple[int, dict]:
    async with http.get(url, headers={"Authorization": f"Bearer {secret}"}) as reply:
        return reply.status, json.loads(await reply.text(), parse_float=Decimal)  # amounts as exact decimals


async def test_a_team_reads_its_own_balance_and_month_and_nobody_else_s(proxy, engine):
    team_a = await create_tenant(engine, "team-a", monthly_budget_usd=Decimal("5"))
    shared = await issue_key(engine, "team-a")
    own_budget = await issue_key(engine, "team-a", monthly_budget_usd=Decimal("1"))
    team_b = await create_tenant(engine, "team-b")
    other = await issue_key(engine, "team-b")
    for key, calls in ((shared, 3), (own_budget, 1), (other, 2)):
        async with openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key.secret, max_retries=0) as sdk:
            for _ in range(calls):
                await sdk.responses.create(model="gpt-4o-mini", input="How much have I spent?")
    await proxy.app[STATE].writer.flush(timeout=10)
    a_total, a_calls = await _charges(engine, "tenant_id", team_a.id)
    own_total, _ = await _charges(engine, "key_id", own_budget.id)
    b_total, _ = await _charges(engine, "tenant_id", team_b.id)
    shared_total, shared_calls = await _charges(engine, "key_id", shared.id)
    assert a_calls == 4 and shared_calls == 3 and a_total > 0 and b_total > 0

    today = datetime.now(timezone.utc).date()
    month = f"start_date={today.replace(day=1)}&end_date={today + timedelta(days=1)}"  # as NextChat asks
    async with aiohttp.ClientSession() as http:
        # The tenant's budget, and the tenant's spend, in cents.
        status, sub = await _get(http, proxy.url + "/v1/dashboard/billing/subscription", shared.secret)
        assert status == 200 and sub["object"] == "billing_subscription"
        assert sub["hard_limit_usd"] == sub["soft_limit_usd"] == 5 and sub["access_until"] == 0
        status, used = await _get(http, f"{proxy.url}/v1/dashboard/billing/usage?{month}", shared.secret)
        assert status == 200 and used["total_usage"] == a_total * 100  # exact, not rounded
        assert sum(item["cost"] for day in used["daily_costs"] for item in day["line_items"]) == a_total * 100
        assert [item["name"] for day in used["daily_costs"] for item in day["line_items"]] == ["gpt-4o-mini"]
        # A key with a budget of its own sees that budget and its own spend.
        status, sub = await _get(http, proxy.url + "/dashboard/billing/subscription", own_budget.secret)
        assert status == 200 and sub["hard_limit_usd"] == 1
        status, used = await _get(http, f"{proxy.url}/dashboard/billing/usage?{month}", own_budget.secret)
        assert used["total_usage"] == own_total * 100
        # Another tenant: no limit (the sentinel these clients know), and only its own spend.
        status, sub = await _get(http, proxy.url + "/v1/dashboard/billing/subscription", other.secret)
        assert sub["hard_limit_usd"] == 100_000_000
        status, used = await _get(http, f"{proxy.url}/v1/dashboard/billing/usage?{month}", other.secret)
        assert used["total_usage"] == b_total * 100 != a_total * 100

        # The month in the proxy's own shape: the tenant and the key, from counters and ledger.
        status, mine = await _get(http, proxy.url + "/v1/usage", shared.secret)
        assert status == 200 and mine["tenant"]["name"] == "team-a"
        tenant, key = mine["tenant"], mine["key"]
        assert (tenant["spent_usd"], tenant["calls"], tenant["budget_usd"]) == (a_total, 4, 5)
        assert tenant["budget_remaining_usd"] == 5 - a_total - tenant["reserved_usd"]
        assert (key["id"], key["spent_usd"], key["calls"], key["budget_usd"]) == (shared.id, shared_total, 3, None)
        assert key["prefix"] == shared.secret[:12] and shared.secret not in json.dumps(mine, default=str)
        status, theirs = await _get(http, proxy.url + "/v1/usage", other.secret)
        assert theirs["tenant"]["name"] == "team-b" and theirs["tenant"]["spent_usd"] == b_total

        # Refusals, in the OpenAI error shape.
        status, body = await _get(http, proxy.url + "/v1/dashboard/billing/usage", "bpk_not_a_key")
        assert status == 401 and body["error"]["code"] == "invalid_api_key"
        status, body = await _get(http, proxy.url + "/v1/usage", "bpk_not_a_key")
        assert status == 401
        status, body = await _get(http, f"{proxy.url}/v1/dashboard/billing/usage?start_date=2026-13-01",
                                  shared.secret)
        assert status == 400 and body["error"]["param"] == "start_date"
        status, body = await _get(http, f"{proxy.url}/v1/dashboard/billing/usage?start_date=2026-01-01"
                                        f"&end_date=2026-06-01", shared.secret)
        assert status == 400 and "100 days" in body["error"]["message"]
