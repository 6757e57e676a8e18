"""Threshold alerts: one webhook POST per threshold per month, retried until delivered."""

import asyncio
import time
from dataclasses import replace
from decimal import Decimal

import openai
from aiohttp import web

from billing.db.alerts import list_alerts
from billing.db.keys import issue_key
from billing.db.tenants import create_tenant
from proxy.app import create_app
from proxy.gateway.state import STATE


async def test_thresholds_fire_once_each_and_failed_posts_are_retried(aiohttp_server, engine, database_url,
                                                                       proxy_settings):
    received, answers = [], iter([500])  # the first POST fails, later ones succeed

    async def webhook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=next(answers, 204))

    hook = web.Application()
    hook.router.add_post("/alerts", webhook)
    hook_server = await aiohttp_server(hook)
    app = create_app(replace(proxy_settings, alert_webhook_url=str(hook_server.make_url("/alerts"))), database_url)
    server = await aiohttp_server(app)

    # gpt-4o-mini: 1 input token ("hi") x 0.15 + 24 output x 0.60 = 14.55 micro-USD a call
    await create_tenant(engine, "watched", monthly_budget_usd=Decimal("0.0001"), alert_thresholds=[50, 70])
    key = await issue_key(engine, "watched")
    async with openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key=key.secret, max_retries=0) as client:
        for _ in range(5):  # 72.75 micro-USD: past 50% (at the 4th call) and 70% (at the 5th)
            await client.responses.create(model="gpt-4o-mini", input="hi", max_output_tokens=24)
            # settled before the next call, so its reservation is no longer the worst case
            await app[STATE].writer.flush(timeout=5)

    deadline = time.monotonic() + 10
    while True:
        alerts = await list_alerts(engine, "watched")
        if len(alerts) == 2 and all(a.delivered_at for a in alerts):
            break
        assert time.monotonic() < deadline, [(a.threshold, a.attempts, a.last_error) for a in alerts]
        await asyncio.sleep(0.2)
    delivered = sorted({(p["threshold"], p["limit"], p["tenant"]) for p in received})
    assert delivered == [(50, "monthly_budget_usd", "watched"), (70, "monthly_budget_usd", "watched")]
    assert len(received) == 3  # one failed first try, then each threshold exactly once
    assert {"tenant", "limit", "threshold", "spent", "month"} <= set(received[-1])
    assert max(a.attempts for a in alerts) == 2 and any(a.last_error is None for a in alerts)
