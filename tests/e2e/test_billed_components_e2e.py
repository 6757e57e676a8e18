"""Service tiers, built-in tools, embeddings, compaction and the endpoints around them,
through the proxy with the official SDK; what the ledger holds is checked against what the
simulated upstream says it billed."""

from decimal import Decimal

import aiohttp
import openai
import pytest
from sqlalchemy import select

from billing.db.keys import issue_key
from billing.db.tables import ledger_entries

D = Decimal
MILLION = D(1_000_000)


async def rows_by_reply(proxy, engine) -> dict[str, object]:
    await proxy.state.writer.flush(timeout=5)
    async with engine.connect() as conn:
        return {r.upstream_response_id: r for r in await conn.execute(select(ledger_entries))}


async def test_the_tier_the_reply_reports_is_billed(proxy, client, engine):
    flex = await client.responses.create(model="gpt-5", input="cheap please", service_tier="flex")
    # asked for flex, but the upstream served (and reports) priority: priority is billed
    upgraded = await client.responses.create(model="gpt-5", input="cheap please", service_tier="flex",
                                             extra_headers={"x-sim-service-tier": "priority"})
    standard = await client.responses.create(model="gpt-5", input="cheap please")
    assert (flex.service_tier, upgraded.service_tier, standard.service_tier) == ("flex", "priority", "default")
    rows = await rows_by_reply(proxy, engine)
    prices = {"flex": (D("0.625"), D("5.00")), "priority": (D("2.50"), D("20.00")), "default": (D("1.25"), D("10.00"))}
    for reply in (flex, upgraded, standard):
        input_price, output_price = prices[reply.service_tier]
        row = rows[reply.id]
        assert row.service_tier == reply.service_tier
        assert row.cost_total == (reply.usage.input_tokens * input_price
                                  + reply.usage.output_tokens * output_price) / MILLION


async def test_tool_calls_are_counted_and_priced_json_and_streamed(proxy, client, engine):
    tools = [{"type": "web_search"}, {"type": "file_search", "vector_store_ids": ["vs_1"]},
             {"type": "code_interpreter", "container": {"type": "auto"}}]
    whole = await client.responses.create(model="gpt-5", input="look it up", tools=tools,
                                          extra_headers={"x-sim-tool-calls": "2"})
    stream = await client.responses.create(model="gpt-5", input="look it up", tools=[{"type": "web_search"}],
                                           stream=True)
    events = [e async for e in stream]
    assert "response.web_search_call.searching" in {e.type for e in events}
    streamed = events[-1].response
    # BytePlus counts its own: usage.tool_usage
    seed = await client.responses.create(model="seed-1-6-250915", input="搜索", tools=[{"type": "web_search"}],
                                         extra_headers={"x-sim-tool-calls": "3"})
    rows = await rows_by_reply(proxy, engine)
    assert rows[whole.id].tool_calls == {"web_search": 2, "file_search": 2, "container.1g": 1}
    # 2 x 10.00 + 2 x 2.50 per 1,000 calls, and one container at 0.03
    assert rows[whole.id].cost_tool_calls == D("0.02") + D("0.005") + D("0.03")
    assert rows[streamed.id].tool_calls == {"web_search": 1} and rows[streamed.id].cost_tool_calls == D("0.01")
    # BytePlus publishes no per-call price: counted, flagged, not priced
    assert rows[seed.id].tool_calls == {"web_search": 3} and rows[seed.id].cost_tool_calls == 0
    assert "tool_unpriced:web_search" in rows[seed.id].usage_flags


async def test_embeddings_compaction_and_token_counts(proxy, client, engine, simulator):
    embedded = await client.embeddings.create(model="text-embedding-3-small", input=["hello world", "bye"])
    assert len(embedded.data) == 2 and len(embedded.data[0].embedding) == 8  # base64, decoded by the SDK
    first = await client.responses.create(model="gpt-5", input="a long conversation " * 20)
    compacted = await client.responses.compact(model="gpt-5", previous_response_id=first.id)
    counted = await client.responses.input_tokens.count(model="gpt-5", input="how many tokens is this?")
    assert counted.input_tokens > 0
    rows = list((await rows_by_reply(proxy, engine)).values())
    by_endpoint = {r.endpoint: r for r in rows}
    assert set(by_endpoint) == {"embeddings", "responses", "responses.compact"}  # the count is not billed
    assert by_endpoint["embeddings"].input_tokens == embedded.usage.prompt_tokens
    assert by_endpoint["embeddings"].cost_total == embedded.usage.prompt_tokens * D("0.02") / MILLION
    assert by_endpoint["responses.compact"].input_tokens == compacted.usage.input_tokens
    assert by_endpoint["responses.compact"].upstream_response_id == compacted.id
    endpoints = [r["endpoint"] for r in simulator.state.usage_records]
    assert sorted(endpoints) == sorted(r.endpoint for r in rows)


async def test_conversations_belong_to_their_tenant(client, stranger):
    conversation = await client.conversations.create(items=[{"type": "message", "role": "user",
                                                               "content": "remember this"}])
    reply = await client.responses.create(model="gpt-5", input="and this", conversation=conversation.id)
    items = await client.conversations.items.list(conversation.id)
    assert reply.conversation.id == conversation.id and items.data
    with pytest.raises(openai.NotFoundError):
        await stranger.conversations.retrieve(conversation.id)
    with pytest.raises(openai.NotFoundError):
        await stranger.responses.create(model="gpt-5", input="peek", conversation=conversation.id)
    with pytest.raises(openai.NotFoundError):
        await stranger.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "x"}],
                                               extra_body={"previous_response_id": reply.id})
    assert (await client.conversations.delete(conversation.id)).deleted


async def test_models_list_and_unknown_paths(proxy, client, engine, simulator, tenant_key):
    names = [m.id async for m in client.models.list()]
    assert {"gpt-5", "seed-1-6", "text-embedding-3-small"} <= set(names) and "*" not in names
    assert (await client.models.retrieve("gpt-5")).id == "gpt-5"
    limited = await issue_key(engine, tenant_key.tenant, allowed_models=["seed-*"])
    async with openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=limited.secret, max_retries=0) as narrow:
        usable = {m.id async for m in narrow.models.list()}
        # a name is usable when it or the model it resolves to matches: bytedance-seed-1-6 is seed-1-6
        assert usable == {n for n in names if n.startswith(("seed-", "bytedance-seed-"))}
        with pytest.raises(openai.NotFoundError):
            await narrow.models.retrieve("gpt-5")
    before = len(simulator.state.requests)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {tenant_key.secret}"}) as http:
        for method, path in (("POST", "/v1/images/generations"), ("GET", "/v1/files"), ("POST", "/v1/batches"),
                             ("POST", "/v1/audio/speech"), ("GET", "/v1/organization/usage/completions")):
            async with http.request(method, proxy.url + path, json={}) as reply:
                assert reply.status == 404 and (await reply.json())["error"]["code"] == "unknown_url"
    assert len(simulator.state.requests) == before  # never forwarded with the operator's key


async def test_websocket_mode_is_refused_at_once(proxy, tenant_key, simulator):
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(proxy.url.replace("http", "ws") + "/v1/responses",
                                  headers={"Authorization": f"Bearer {tenant_key.secret}"})
        assert refused.value.status == 426
        async with http.get(proxy.url + "/v1/responses", headers={"Upgrade": "websocket"}) as reply:
            assert reply.status == 426 and (await reply.json())["error"]["code"] == "websocket_not_supported"
    assert simulator.state.requests == []
