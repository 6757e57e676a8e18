"""A small budget serves calls: each call's output cap is lowered to what is left instead of
the call being refused; per-call caps, request quotas and soft enforcement. The official
SDK as the client, the simulated upstream, real Postgres; spend never exceeds a hard limit."""

import asyncio
from datetime import datetime, timezone
from decimal import Decimal as D

import openai
import pytest
from sqlalchemy import func, select

from billing.db.keys import issue_key
from billing.db.limit_use import limit_uses
from billing.db.tables import ledger_entries
from billing.db.tenants import create_tenant


async def spent(proxy, engine, tenant_id: int) -> D:
    await proxy.state.writer.flush(timeout=10)
    async with engine.connect() as conn:
        return (await conn.execute(select(func.coalesce(func.sum(ledger_entries.c.charge_total), 0))
                                   .where(ledger_entries.c.tenant_id == tenant_id))).scalar_one()


async def team(proxy, engine, name: str, **limits):
    tenant = await create_tenant(engine, name, **{k: v for k, v in limits.items() if not k.startswith("key_")})
    key = await issue_key(engine, name, **{k[4:]: v for k, v in limits.items() if k.startswith("key_")})
    return tenant, openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key.secret, max_retries=0)


async def test_hello_calls_without_a_cap_fit_a_five_cent_budget(proxy, engine, simulator):
    """Before, 12 of 12 were refused at 0% spent (gpt-5's 128,000-token cap costs $1.28)."""
    tenant, client = await team(proxy, engine, "five-cents", monthly_budget_usd=D("0.05"))
    async with client:
        for _ in range(12):
            raw = await client.responses.with_raw_response.create(model="gpt-5", input="hello")
            assert raw.headers["x-billing-output-cap-limit"] == "tenant_budget"
            cap = int(raw.headers["x-billing-output-cap"])
            assert 256 <= cap < 128_000
            assert simulator.state.requests[-1]["body"]["max_output_tokens"] == cap
            assert raw.parse().status == "completed"
    assert 0 < await spent(proxy, engine, tenant.id) <= D("0.05")


async def test_a_fitted_call_that_needs_more_ends_incomplete_and_stays_in_the_budget(proxy, engine):
    tenant, client = await team(proxy, engine, "long-answers", monthly_budget_usd=D("0.02"))
    async with client:
        reply = await client.responses.create(model="gpt-5", input="write a lot",
                                              extra_headers={"x-sim-output-tokens": "100000"})
        assert reply.status == "incomplete" and reply.incomplete_details.reason == "max_output_tokens"
        refusals = 0
        for _ in range(30):  # until the floor no longer fits
            try:
                await client.responses.create(model="gpt-5", input="more", extra_headers={"x-sim-output-tokens": "100000"})
            except openai.RateLimitError as error:
                refusals += 1
                assert error.code == "insufficient_quota"
                assert "more than is left of the team's monthly budget" in error.message
                assert "would fit" in error.message or "is spent" in error.message
                break
        assert refusals == 1
    total = await spent(proxy, engine, tenant.id)
    assert D("0.02") * D("0.85") <= total <= D("0.02")


async def test_chat_is_fitted_with_max_completion_tokens_counting_every_choice(proxy, engine, simulator):
    tenant, client = await team(proxy, engine, "chat-choices", monthly_budget_usd=D("0.05"))
    async with client:
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-5", n=3, max_tokens=100_000, messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-sim-output-tokens": "100000"})
        cap = int(raw.headers["x-billing-output-cap"])
        sent = simulator.state.requests[-1]["body"]
        assert sent["max_completion_tokens"] == cap and "max_tokens" not in sent
        completion = raw.parse()
        assert len(completion.choices) == 3 and completion.usage.completion_tokens <= 3 * cap
    assert await spent(proxy, engine, tenant.id) <= D("0.05")


async def test_byteplus_prefix_caching_cannot_be_fitted_and_the_refusal_says_so(proxy, engine):
    tenant, client = await team(proxy, engine, "prefix-cache", monthly_budget_usd=D("0.01"))
    async with client:
        with pytest.raises(openai.RateLimitError) as refused:
            await client.responses.create(model="seed-1-6-250915", input="a long shared prefix " * 20,
                                          extra_body={"caching": {"type": "enabled", "prefix": True}})
    assert "caching.prefix" in refused.value.message
    assert await spent(proxy, engine, tenant.id) == 0


async def test_below_the_floor_a_call_is_refused_with_the_cap_that_would_fit(proxy, engine):
    # $0.002 left: 256 gpt-5 output tokens cost $0.00256, so the floor does not fit
    tenant, client = await team(proxy, engine, "below-floor", monthly_budget_usd=D("0.002"))
    async with client:
        with pytest.raises(openai.RateLimitError) as refused:
            await client.responses.create(model="gpt-5", input="hello")
        assert refused.value.code == "insufficient_quota"
        assert "`max_output_tokens`" in refused.value.message and "would fit" in refused.value.message
        reply = await client.responses.create(model="gpt-5", input="hello", max_output_tokens=100)
        assert reply.status == "completed"
    assert await spent(proxy, engine, tenant.id) <= D("0.002")


async def test_a_floor_of_the_key_lets_a_tiny_budget_serve(proxy, engine):
    tenant, client = await team(proxy, engine, "low-floor", monthly_budget_usd=D("0.002"), key_fit_floor_tokens=50)
    async with client:
        raw = await client.responses.with_raw_response.create(model="gpt-5", input="hello")
        assert 50 <= int(raw.headers["x-billing-output-cap"]) < 256
    assert await spent(proxy, engine, tenant.id) <= D("0.002")


async def test_a_per_call_cap_fits_calls_and_refuses_one_whose_input_alone_costs_more(proxy, engine, simulator):
    tenant, client = await team(proxy, engine, "agents", key_max_call_usd=D("0.01"))
    async with client:
        raw = await client.responses.with_raw_response.create(model="gpt-5", input="plan the next step",
                                                              extra_headers={"x-sim-output-tokens": "5000"})
        assert raw.headers["x-billing-output-cap-limit"] == "key_max_call"
        reply = raw.parse()
        assert reply.status == "incomplete"
        with pytest.raises(openai.BadRequestError) as refused:
            # o200k_base merges x in eights: 25,000 tokens at most, $0.031 of input
            await client.responses.create(model="gpt-5", input="x" * 200_000)
        assert refused.value.code == "max_call_cost_exceeded" and "input alone" in refused.value.message
    entries = await spent(proxy, engine, tenant.id)
    assert 0 < entries <= D("0.01")


async def test_a_daily_request_quota_counts_calls(proxy, engine):
    tenant, client = await team(proxy, engine, "per-call-plan", daily_request_quota=3)
    async with client:
        for _ in range(3):
            await client.responses.create(model="gpt-4o-mini", input="hi")
        await proxy.state.writer.flush(timeout=10)
        with pytest.raises(openai.RateLimitError) as refused:
            await client.responses.create(model="gpt-4o-mini", input="hi")
    assert "the team's daily request quota is used up" in refused.value.message
    uses = [u for u in await limit_uses(engine, datetime.now(timezone.utc).date().replace(day=1), True)
            if u.tenant == "per-call-plan"]
    assert [(u.kind, u.window, u.spent, u.held) for u in uses] == [("requests", "day", 3, 0)]


async def test_a_burst_shares_a_small_budget_and_never_overspends_it(two_proxies, engine):
    """50 calls at once through two processes against $0.05: several are served at once, the
    rest told to retry, and a retry after the burst is served."""
    urls, _, _ = two_proxies
    tenant = await create_tenant(engine, "burst-team", monthly_budget_usd=D("0.05"))
    key = await issue_key(engine, "burst-team")
    clients = [openai.AsyncOpenAI(base_url=url + "/v1", api_key=key.secret, max_retries=0) for url in urls]

    async def one(i: int):
        try:
            return await clients[i % 2].responses.create(model="gpt-5-mini", input="hello",
                                                         extra_headers={"x-sim-delay-ms": "300"})
        except openai.RateLimitError as error:
            return error

    results = await asyncio.gather(*(one(i) for i in range(50)))
    served = [r for r in results if not isinstance(r, Exception)]
    held = [r for r in results if isinstance(r, openai.RateLimitError) and r.code == "rate_limit_exceeded"]
    assert len(served) >= 20 and len(served) + len(held) == 50
    await asyncio.sleep(1.5)  # the processes' ledger writers settle what the burst spent
    again = await clients[0].responses.create(model="gpt-5-mini", input="hello")
    assert again.status == "completed"
    for client in clients:
        await client.close()
    await asyncio.sleep(1.5)
    async with engine.connect() as conn:
        total = (await conn.execute(select(func.sum(ledger_entries.c.charge_total))
                                    .where(ledger_entries.c.tenant_id == tenant.id))).scalar_one()
    assert 0 < total <= D("0.05")


async def test_soft_enforcement_admits_while_under_and_reports_the_overrun(proxy, engine):
    tenant, client = await team(proxy, engine, "soft-team", monthly_budget_usd=D("0.001"), enforcement="soft")
    async with client:
        replies = await asyncio.gather(*(client.responses.create(
            model="gpt-4o-mini", input="hello", extra_headers={"x-sim-output-tokens": "1000", "x-sim-delay-ms": "200"})
            for _ in range(5)))
        assert all(r.status == "completed" for r in replies)  # not fitted: soft mode never lowers a cap
        total = await spent(proxy, engine, tenant.id)
        assert total > D("0.001")  # calls in flight when the limit was reached overran it
        with pytest.raises(openai.RateLimitError) as refused:
            await client.responses.create(model="gpt-4o-mini", input="hello")
        assert refused.value.code == "insufficient_quota"
    [use] = [u for u in await limit_uses(engine, datetime.now(timezone.utc).date().replace(day=1), True)
             if u.tenant == "soft-team"]
    assert use.overrun == total - D("0.001") > 0
