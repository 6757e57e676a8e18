"""A scripted mixed day through the proxy with the official SDK: every service tier, web and
file searches, embeddings, compaction, BytePlus cache storage and tool_usage, background
calls (polled, never polled, cancelled), chat, and cut streams of each framing (a stored
response's read back and billed exactly).

At the end the ledger is compared, reply by reply and component by component, with an
independent computation from the simulated upstream's own record of what it billed, using
prices written out here. The report and the quota counters must agree with the ledger.
"""

import asyncio
from datetime import datetime, timezone
from decimal import Decimal
from fractions import Fraction

import aiohttp
from sqlalchemy import select

from billing.db.prices import load_pricebook, set_price
from billing.db.reports import ledger_totals, monthly_report, rollup_totals
from billing.reconcile import compare
from billing.report import parse_month
from billing.db.tables import background_responses, ledger_entries, quota_usage, reservations
from billing.db.tenants import update_tenant
from billing.pricing import revised

LONG_PROMPT = "你是一个文学分析助手。" + "一块八毛七。" * 200
GPT5_TOOLS = {"web_search": Fraction(10), "file_search": Fraction(5, 2), "container.1g": Fraction(30)}
# (input, cached, output) per service tier, USD per 1M tokens: the published prices, again.
PRICES = {
    "gpt-5": {"default": (Fraction(5, 4), Fraction(1, 8), Fraction(10)),
              "flex": (Fraction(5, 8), Fraction(1, 16), Fraction(5)),
              "priority": (Fraction(5, 2), Fraction(1, 4), Fraction(20))},
    "seed-1-6-250915": {"default": (Fraction(1, 4), Fraction(1, 20), Fraction(2))},
    "text-embedding-3-small": {"default": (Fraction(1, 50), Fraction(1, 500), Fraction(0))},
}
TOOL_PRICES = {"gpt-5": GPT5_TOOLS, "seed-1-6-250915": {"web_search": Fraction(5)}}
SEED_STORAGE = Fraction(83, 10000)  # USD per 1M tokens per hour


def expected_components(record: dict) -> dict[str, Fraction]:
    """What the upstream's record costs, from its usage block (either shape)."""
    usage = record["usage"]
    input_tokens = usage.get("input_tokens", usage.get("prompt_tokens", 0))
    output_tokens = usage.get("output_tokens", usage.get("completion_tokens", 0))
    cached = (usage.get("input_tokens_details") or usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
    reasoning = (usage.get("output_tokens_details") or usage.get("completion_tokens_details") or {}).get(
        "reasoning_tokens", 0)
    tiers = PRICES[record["model"]]
    input_price, cached_price, output_price = tiers.get(record["service_tier"] or "default", tiers["default"])
    tools = TOOL_PRICES.get(record["model"], {})
    storage_hours = record["cache_storage_tokens"] * record["cache_storage_hours"]
    return {
        "cost_uncached_input": (input_tokens - cached) * input_price / 10**6,
        "cost_cached_input": cached * cached_price / 10**6,
        "cost_output": (output_tokens - reasoning) * output_price / 10**6,
        "cost_reasoning": reasoning * output_price / 10**6,
        "cost_tool_calls": sum((n * tools[name] / 1000 for name, n in record["tool_calls"].items()), Fraction(0)),
        "cost_cache_storage": storage_hours * SEED_STORAGE / 10**6 if record["model"].startswith("seed") else 0,
    }


async def post_raw(proxy, secret, path, body, headers) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(proxy.url + path, json=body, headers={"Authorization": f"Bearer {secret}",
                                                                   **headers}) as reply:
            try:
                await reply.read()
            except aiohttp.ClientPayloadError:
                pass


async def test_a_mixed_day_equals_the_upstreams_bill(proxy, client, engine, simulator, tenant_key):
    await update_tenant(engine, tenant_key.tenant, monthly_budget_usd="50")
    async with engine.connect() as conn:
        seed_price = (await load_pricebook(conn)).version_at("seed-1-6", datetime.now(timezone.utc))
    await set_price(engine, revised(seed_price, seed_price.tiers, model="seed-1-6", effective_from=datetime(
        2020, 1, 1, tzinfo=timezone.utc), source="test", tools={"web_search": Decimal(5)}))
    await proxy.state.mirror.sync(full=True)

    # Every service tier, one of them upgraded by the upstream, JSON and streamed.
    await client.responses.create(model="gpt-5", input="standard")
    await client.responses.create(model="gpt-5", input="flex", service_tier="flex")
    await client.responses.create(model="gpt-5", input="asked flex", service_tier="flex",
                                  extra_headers={"x-sim-service-tier": "priority"})
    async for _ in await client.responses.create(model="gpt-5", input="priority stream", stream=True,
                                                 service_tier="priority", reasoning={"effort": "low"}):
        pass
    # Built-in tools: searches and a container, JSON and a data-only stream.
    await client.responses.create(model="gpt-5", input="search", extra_headers={"x-sim-tool-calls": "2"},
                                  tools=[{"type": "web_search"}, {"type": "file_search", "vector_store_ids": ["v"]},
                                         {"type": "code_interpreter", "container": {"type": "auto"}}])
    async for _ in await client.responses.create(model="gpt-5", input="search", stream=True,
                                                 tools=[{"type": "web_search"}],
                                                 extra_headers={"x-sim-framing": "data-only"}):
        pass
    # BytePlus: a prefix cache, a session continued from it, searches counted in tool_usage.
    prefix = await client.responses.create(model="seed-1-6-250915", input=[{"role": "system", "content": LONG_PROMPT}],
                                           extra_body={"caching": {"type": "enabled", "prefix": True},
                                                       "thinking": {"type": "disabled"}})
    session = await client.responses.create(model="seed-1-6-250915", previous_response_id=prefix.id, input="总结",
                                            extra_body={"caching": {"type": "enabled"}, "thinking": {"type": "disabled"}})
    await client.responses.create(model="seed-1-6-250915", input="搜索", tools=[{"type": "web_search"}],
                                  extra_headers={"x-sim-tool-calls": "3"})
    # Deleting the session ends its storage early: credited the hours it will not be kept.
    await client.responses.delete(session.id)
    # Embeddings, compaction, chat.
    await client.embeddings.create(model="text-embedding-3-small", input=["one", "two", "three"])
    await client.responses.compact(model="gpt-5", previous_response_id=prefix.id)
    await client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "hi"}],
                                         service_tier="priority")
    async for _ in await client.chat.completions.create(model="gpt-5", stream=True,
                                                        messages=[{"role": "user", "content": "hi"}]):
        pass
    # Background calls: polled by the client, never polled, cancelled.
    polled = await client.responses.create(model="gpt-5", input="job", background=True,
                                           extra_headers={"x-sim-background-ms": "100"})
    await client.responses.create(model="gpt-5", input="job", background=True, service_tier="flex",
                                  extra_headers={"x-sim-background-ms": "200"})
    running = await client.responses.create(model="gpt-5", input="job", background=True,
                                            extra_headers={"x-sim-background-ms": "60000"})
    await client.responses.cancel(running.id)
    while (await client.responses.retrieve(polled.id)).status != "completed":
        await asyncio.sleep(0.05)
    # Cut streams of each framing: stored responses are read back and billed exactly; a chat
    # stream and an error event from estimates, flagged.
    secret = tenant_key.secret
    await post_raw(proxy, secret, "/v1/responses", {"model": "gpt-5", "input": "cut", "stream": True},
                   {"x-sim-cut-after": "9"})
    await post_raw(proxy, secret, "/v1/responses", {"model": "gpt-5", "input": "cut", "stream": True},
                   {"x-sim-cut-after": "9", "x-sim-framing": "data-only"})
    await post_raw(proxy, secret, "/v1/chat/completions", {
        "model": "seed-1-6-250915", "messages": [{"role": "user", "content": "cut"}], "stream": True,
        "stream_options": {"chunk_include_usage": True}}, {"x-sim-cut-after": "6"})
    await post_raw(proxy, secret, "/v1/responses", {"model": "seed-1-6-250915", "input": "cut", "stream": True},
                   {"x-sim-error-after": "8"})

    calls = 21  # 20 replies and one storage credit
    for _ in range(200):  # the never-polled background call ends upstream, then the poller settles it
        await proxy.state.writer.flush(timeout=5)
        async with engine.connect() as conn:
            rows = (await conn.execute(select(ledger_entries))).all()
        if len(rows) == calls:
            break
        await asyncio.sleep(0.05)
    records = simulator.state.usage_records
    assert len(rows) == len(records) == calls

    by_reply = {r.upstream_response_id + (":deleted" if r.endpoint == "responses.delete" else ""): r
                for r in rows if r.endpoint != "embeddings"}
    [embedding_row] = [r for r in rows if r.endpoint == "embeddings"]
    estimated = [r for r in rows if r.estimated]
    assert len(estimated) == 2 and all(r.status == "usage_missing" for r in estimated)
    exact_total = Fraction(0)
    for record in records:
        row = embedding_row if record["endpoint"] == "embeddings" else by_reply.pop(record["id"])
        if row.estimated:
            continue
        expected = expected_components(record)
        for component, value in expected.items():
            assert Fraction(str(getattr(row, component))) == value, (record["id"], component)
        assert Fraction(str(row.cost_total)) == sum(expected.values())
        assert row.service_tier == record["service_tier"] and row.tool_calls == record["tool_calls"]
        exact_total += sum(expected.values())
    assert by_reply == {}  # every entry names a reply the upstream billed, once

    report = await monthly_report(engine, datetime.now(timezone.utc).strftime("%Y-%m"), by=("model",))
    assert report.total_cost == sum(r.cost_total for r in rows)
    assert Fraction(str(report.total_cost - sum(r.cost_total for r in estimated))) == exact_total
    gpt5 = next(r for r in report.rows if r.group["model"] == "gpt-5")
    assert gpt5.tokens["tool_calls"] == 2 + 2 + 1 + 1  # searches, file searches, one container, one search
    assert gpt5.costs["cost_tool_calls"] == Decimal("0.02") + Decimal("0.005") + Decimal("0.03") + Decimal("0.01")
    seed = next(r for r in report.rows if r.group["model"] == "seed-1-6")
    assert seed.costs["cost_cache_storage"] > 0 and seed.costs["cost_tool_calls"] == Decimal("0.015")
    [credit] = [r for r in rows if r.endpoint == "responses.delete"]
    assert credit.cache_storage_hours == -71 and credit.cost_total < 0  # 72 booked, 1 started hour used
    # By service tier: what the upstream billed in each, and the rollups agree with the entries.
    month = datetime.now(timezone.utc).strftime("%Y-%m")
    tiers = {r.group["service_tier"]: r for r in (await monthly_report(engine, month, by=("service_tier",))).rows}
    assert set(tiers) == {"default", "flex", "priority"}
    for tier, row in tiers.items():
        assert row.cost == sum(r.cost_total for r in rows if (r.service_tier or "default") == tier)
    assert tiers["flex"].requests == 2 and tiers["priority"].requests == 3
    start, end = parse_month(month)
    assert compare(await ledger_totals(engine, start, end), await rollup_totals(engine, start, end), str) == []
    async with engine.connect() as conn:
        spent = (await conn.execute(select(quota_usage.c.spent_usd).where(quota_usage.c.scope == "tenant"))).scalar()
        assert (await conn.execute(select(reservations))).all() == []
        assert (await conn.execute(select(background_responses).where(
            background_responses.c.settled_at.is_(None)))).all() == []
    assert spent == sum(r.charge_total for r in rows)
