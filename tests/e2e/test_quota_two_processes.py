"""Quotas across two proxy processes on one database: 200 concurrent requests from one
tenant against a limit that covers about 50; nobody overspends, the rest get 429, and the
ledger, the report and the quota counters agree exactly. And a killed process's
reservation stops blocking the tenant once it expires."""

import asyncio
import signal
import time
from datetime import datetime, timezone
from decimal import Decimal

import aiohttp
import orjson
import pytest
from sqlalchemy import func, select

from billing.db.keys import issue_key
from billing.db.quota import counters
from billing.db.reports import monthly_report
from billing.db.tables import ledger_entries, reservations
from billing.db.tenants import create_tenant
from billing.quota import period_start

D = Decimal
# gpt-4o-mini: 0.15 / 0.60 USD per 1M. A request of this body with max_output_tokens 30
# reserves at most its bytes (~70) x 0.15 + 30 x 0.60 (~29 micro-USD; counting only the
# content read, 22); the simulator bills ~7 input and 30 output tokens (~19 micro-USD).
BODY = {"model": "gpt-4o-mini", "input": "Count the tokens.", "max_output_tokens": 30}
SIM_HEADERS = {"x-sim-output-tokens": "30"}


async def burst(urls, secret, count=200):
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json", **SIM_HEADERS}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        async def one(i):
            async with http.post(urls[i % 2] + "/v1/responses", data=orjson.dumps(BODY), headers=headers) as reply:
                return reply.status, await reply.json(), {k.lower(): v for k, v in reply.headers.items()}
        return await asyncio.gather(*[one(i) for i in range(count)])


async def settled(engine, expected_entries, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        async with engine.connect() as conn:
            entries = (await conn.execute(select(func.count()).select_from(ledger_entries))).scalar_one()
            pending = (await conn.execute(select(func.count()).select_from(reservations))).scalar_one()
        if entries == expected_entries and pending == 0:
            return
        assert time.monotonic() < deadline, f"{entries} entries, {pending} reservations"
        await asyncio.sleep(0.1)


async def check_agreement(engine, tenant, key):
    period = period_start(datetime.now(timezone.utc))
    async with engine.connect() as conn:
        charged, tokens = (await conn.execute(
            select(func.sum(ledger_entries.c.charge_total), func.sum(ledger_entries.c.input_tokens
                                                                     + ledger_entries.c.output_tokens))
            .where(ledger_entries.c.tenant_id == tenant.id))).one()
    report = await monthly_report(engine, datetime.now(timezone.utc).strftime("%Y-%m"), tenant=tenant.name)
    tenant_counters = await counters(engine, "tenant", tenant.id, period)
    key_counters = await counters(engine, "key", key.id, period)
    assert report.total_charge == charged == tenant_counters.spent_usd == key_counters.spent_usd
    assert tenant_counters.spent_tokens == tokens
    assert tenant_counters.reserved_usd == 0 and tenant_counters.reserved_tokens == 0
    return charged, tokens


@pytest.mark.parametrize("limit", ["tenant_budget", "tenant_tokens", "key_budget"])
async def test_200_concurrent_requests_over_two_processes(two_proxies, engine, limit):
    urls, _, _ = two_proxies
    budget = D("0.001")  # about 50 calls as billed (~19 micro-USD each)
    tenant = await create_tenant(engine, "burst", monthly_budget_usd=budget if limit == "tenant_budget" else
                                 (D("1") if limit == "key_budget" else None),
                                 monthly_token_quota=2000 if limit == "tenant_tokens" else None)
    key = await issue_key(engine, "burst", monthly_budget_usd=budget if limit == "key_budget" else None)

    results = await burst(urls, key.secret)
    ok = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 429]
    assert len(ok) + len(refused) == 200, {r[0] for r in results}
    assert ok and refused
    for _, body, headers in refused:
        # Spent: final. Held by the calls in flight: worth a retry once they end.
        if body["error"]["code"] == "insufficient_quota":
            assert body["error"]["type"] == "insufficient_quota" and "resets at" in body["error"]["message"]
            assert headers["x-should-retry"] == "false"
        else:
            assert (body["error"]["code"], body["error"]["type"]) == ("rate_limit_exceeded", "budget_in_flight")
            assert headers["retry-after"] == "1" and headers["x-should-retry"] == "true"
    header = {"tenant_budget": "x-billing-budget-remaining", "tenant_tokens": "x-billing-tokens-remaining",
              "key_budget": "x-billing-key-budget-remaining"}[limit]
    assert all(header in headers for _, _, headers in ok)

    await settled(engine, len(ok))
    charged, tokens = await check_agreement(engine, tenant, key)
    if limit == "tenant_tokens":
        assert tokens <= 2000
    else:
        assert charged <= budget
    # At the very least, as many as fit side by side at their worst case were admitted.
    worst_tokens = len(orjson.dumps(BODY)) + BODY["max_output_tokens"]
    worst_charge = (len(orjson.dumps(BODY)) * D("0.15") + BODY["max_output_tokens"] * D("0.60")) / D(10**6)
    assert len(ok) >= (2000 // worst_tokens if limit == "tenant_tokens" else budget // worst_charge)


async def test_a_killed_process_reservation_expires(two_proxies, engine, simulator):
    urls, processes, _ = two_proxies
    # One worst case fits, two do not: the content read ("input" and its text, 26 tokens) and
    # the 30-token cap: 26 x 0.15 + 30 x 0.60 = 21.9 micro-USD.
    await create_tenant(engine, "fragile", monthly_budget_usd=D("0.00003"))
    key = await issue_key(engine, "fragile")
    headers = {"Authorization": f"Bearer {key.secret}", "x-sim-delay-ms": "200", "x-sim-output-tokens": "30"}
    async with aiohttp.ClientSession() as http:
        streaming = await http.post(urls[0] + "/v1/responses", json={**BODY, "stream": True}, headers=headers)
        assert streaming.status == 200
        await streaming.content.readuntil(b"\n\n")
        processes[0].popen.send_signal(signal.SIGKILL)  # dies holding the reservation
        processes[0].popen.wait(timeout=10)
        streaming.close()
        async with http.post(urls[1] + "/v1/responses", json=BODY, headers=headers) as reply:
            assert reply.status == 429  # the dead process's reservation still counts...
        killed_at = time.monotonic()
        while True:  # ...until it expires (BILLING_PROXY_RESERVATION_TTL=3)
            async with http.post(urls[1] + "/v1/responses", json=BODY, headers=headers) as reply:
                if reply.status == 200:
                    break
                assert reply.status == 429
            assert time.monotonic() - killed_at < 6, "the reservation outlived its expiry"
            await asyncio.sleep(0.25)
