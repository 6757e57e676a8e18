"""Calls billed as the upstream bills them, at the prices the vendors publish: through the
proxy with the official SDK (and the Codex CLI's own body), the amounts worked out by hand
from the published prices, and checked against the simulated upstream's bill, which it
prices from its own list (`proxy.simulator.list_prices`), never from the shipped catalog.

The published prices used below (USD per 1M tokens, per 1,000 calls, per image):
- gpt-5.5: 5.00 input, 0.50 cached, 30.00 output; above 272,000 input tokens the whole
  request at 10.00 / 1.00 / 45.00 (developers.openai.com/api/docs/models/gpt-5.5);
- gpt-5.6-sol since 2026-08-21: 4.00 / 0.40 / 20.00; Fast mode (priority) 10.00 / 1.00 /
  60.00 (openai.com/api-fast-mode);
- gpt-6.2-sol: 2.00 / 0.10 / 10.00 (developers.openai.com/api/docs/models/gpt-6.2-sol);
- the image generation tool: a gpt-image-1 image at high quality, 1024x1024, 0.167;
- a 4g container of code interpreter 0.12, once per 20-minute session;
- web_search_preview on a non-reasoning model (gpt-4o: 2.50 / 10.00) 25.00 per 1,000 calls,
  web_search 10.00; opening a page carries no call fee.
"""

import json
from decimal import Decimal
from pathlib import Path

import aiohttp
from sqlalchemy import select

from billing.db.tables import ledger_entries

D = Decimal
MILLION = D(1_000_000)
CODEX_TURN = Path(__file__).parents[1] / "corpus" / "codex-cli" / "exec-hello.json"


async def billed(proxy, engine) -> dict[str, object]:
    await proxy.state.writer.flush(timeout=5)
    async with engine.connect() as conn:
        return {r.upstream_response_id: r for r in await conn.execute(select(ledger_entries))}


def upstream_bill(simulator) -> dict[str, Decimal]:
    """What the simulated upstream billed each reply, at its own list prices."""
    from proxy.simulator.usage import _priced
    return {record["id"]: sum(_priced(record)[1].values(), D(0)) for record in simulator.state.usage_records}


async def test_a_long_context_call_bills_the_whole_request_at_the_long_context_prices(proxy, client, engine,
                                                                                     simulator):
    reply = await client.responses.create(model="gpt-5.5", input="read the attached file",
                                          extra_headers={"x-sim-extra-input-tokens": "300000",
                                                         "x-sim-output-tokens": "1000"})
    assert reply.usage.input_tokens > 272_000 and reply.usage.output_tokens == 1000
    row = (await billed(proxy, engine))[reply.id]
    # every input token at 10.00 and every output token at 45.00 (not 5.00 and 30.00)
    expected = (reply.usage.input_tokens * D(10) + 1000 * D(45)) / MILLION
    assert row.cost_total == expected == upstream_bill(simulator)[reply.id]
    # the figure: 300,000 in, 1,000 out is 3.045, where the short-context prices give 1.53
    assert (300_000 * D(10) + 1000 * D(45)) / MILLION == D("3.045")


async def test_a_priority_call_on_gpt_5_6_is_billed_at_the_fast_mode_prices(proxy, client, engine, simulator):
    reply = await client.responses.create(model="gpt-5.6-sol", input="quick", service_tier="priority",
                                          extra_headers={"x-sim-output-tokens": "500"})
    fast = await client.responses.create(model="gpt-5.6-sol", input="quick", service_tier="fast",
                                         extra_headers={"x-sim-output-tokens": "500"})
    assert reply.service_tier == fast.service_tier == "priority"  # the upstream answers fast as priority
    rows, bill = await billed(proxy, engine), upstream_bill(simulator)
    for served in (reply, fast):
        expected = (served.usage.input_tokens * D(10) + 500 * D(60)) / MILLION
        assert rows[served.id].cost_total == expected == bill[served.id]
        assert not [f for f in rows[served.id].usage_flags if f.startswith("service_tier_unpriced")]


async def test_the_codex_clis_default_model_is_priced(proxy, tenant_key, engine, simulator):
    turn = json.loads(CODEX_TURN.read_text())
    body = {**turn["body"], "model": "gpt-6.2-sol"}
    async with aiohttp.ClientSession() as http:
        async with http.post(proxy.url + "/v1/responses", json=body,
                             headers={**turn["headers"], "authorization": f"Bearer {tenant_key.secret}"}) as answer:
            assert answer.status == 200, await answer.text()
            events = [line for line in (await answer.text()).splitlines() if line.startswith("data: ")]
    final = json.loads(events[-1][6:])["response"]
    usage = final["usage"]
    row = (await billed(proxy, engine))[final["id"]]
    cached = usage["input_tokens_details"]["cached_tokens"]
    # the turn offers web search, which the model called once: 10.00 per 1,000 searches
    assert row.tool_calls == {"web_search": 1} and row.cost_tool_calls == D("0.01")
    expected = ((usage["input_tokens"] - cached) * D("2.00") + cached * D("0.10")
                + usage["output_tokens"] * D("10.00")) / MILLION + D("0.01")
    assert row.model == "gpt-6.2-sol" and row.cost_total == expected == upstream_bill(simulator)[final["id"]]


async def test_an_image_made_by_the_image_generation_tool_is_billed(proxy, client, engine, simulator):
    tools = [{"type": "image_generation", "model": "gpt-image-1", "quality": "high", "size": "1024x1024"}]
    reply = await client.responses.create(model="gpt-5.5", input="draw a lighthouse", tools=tools)
    assert [item.type for item in reply.output if item.type == "image_generation_call"] == ["image_generation_call"]
    row = (await billed(proxy, engine))[reply.id]
    assert row.tool_calls == {"image_generation.gpt-image-1.high.1024x1024": 1}
    assert row.cost_tool_calls == D("0.167")
    tokens = (reply.usage.input_tokens * D(5) + reply.usage.output_tokens * D(30)) / MILLION
    assert row.cost_total == tokens + D("0.167") == upstream_bill(simulator)[reply.id]


async def test_a_4g_container_is_billed_once_per_session(proxy, client, engine, simulator):
    tools = [{"type": "code_interpreter", "container": {"type": "auto", "memory_limit": "4g"}}]
    first = await client.responses.create(model="gpt-5.5", input="run it", tools=tools)
    container = next(item.container_id for item in first.output if item.type == "code_interpreter_call")
    # the same container, named by its id, within its 20-minute session: no second fee
    again = await client.responses.create(model="gpt-5.5", input="run it again", previous_response_id=first.id,
                                          tools=[{"type": "code_interpreter", "container": container}])
    rows, bill = await billed(proxy, engine), upstream_bill(simulator)
    assert rows[first.id].tool_calls == {"container.4g": 1} and rows[first.id].cost_tool_calls == D("0.12")
    assert rows[again.id].tool_calls == {} and rows[again.id].cost_tool_calls == 0
    assert "container_session_continued" in rows[again.id].usage_flags
    for reply in (first, again):
        assert rows[reply.id].cost_total == bill[reply.id]


async def test_web_search_preview_on_a_non_reasoning_model(proxy, client, engine, simulator):
    preview = await client.responses.create(model="gpt-4o", input="news?", tools=[{"type": "web_search_preview"}],
                                            extra_headers={"x-sim-tool-calls": "3",
                                                           "x-sim-web-actions": "search,open_page,search"})
    plain = await client.responses.create(model="gpt-4o", input="news?", tools=[{"type": "web_search"}])
    rows, bill = await billed(proxy, engine), upstream_bill(simulator)
    # three calls, two of them searches: 2 x 25.00 per 1,000; opening the page is free
    assert rows[preview.id].tool_calls == {"web_search_preview": 2}
    assert rows[preview.id].cost_tool_calls == D("0.05")
    assert rows[plain.id].tool_calls == {"web_search": 1} and rows[plain.id].cost_tool_calls == D("0.01")
    for reply in (preview, plain):
        tokens = (reply.usage.input_tokens * D("2.50") + reply.usage.output_tokens * D(10)) / MILLION
        assert rows[reply.id].cost_total == tokens + rows[reply.id].cost_tool_calls == bill[reply.id]


async def test_a_residency_upstreams_uplift_raises_every_component(aiohttp_server, engine, database_url,
                                                                   proxy_settings, tenant_key, simulator):
    """OpenAI's data-residency endpoints bill 10% above list: `price_uplift` on the upstream."""
    from dataclasses import replace

    import openai

    from billing.db.tenants import update_tenant
    from proxy.app import create_app
    from tests.conftest import RunningProxy

    settings = replace(proxy_settings, upstream_price_uplift=D("0.10"))
    server = await aiohttp_server(create_app(settings, database_url))
    proxy = RunningProxy(str(server.make_url("")).rstrip("/"), server.app, settings)
    await update_tenant(engine, tenant_key.tenant, monthly_budget_usd=D("5"))  # the quota path prices it too
    async with openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=tenant_key.secret, max_retries=0) as client:
        reply = await client.responses.create(model="gpt-5.5", input="hello from the EU",
                                              tools=[{"type": "web_search"}],
                                              extra_headers={"x-sim-output-tokens": "100"})
    row = (await billed(proxy, engine))[reply.id]
    # the token prices 10% up; the web search fee as listed
    tokens = (reply.usage.input_tokens * D(5) + reply.usage.output_tokens * D(30)) / MILLION
    assert row.cost_total == tokens * D("1.10") + D("0.01") and row.cost_tool_calls == D("0.01")
    assert row.charge_total == row.cost_total and "cost_uplift:0.10" in row.usage_flags
