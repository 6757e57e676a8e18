"""Built-in tool fees a tenant might try to get unbilled, through the proxy with the official
SDK against the simulated upstream, which bills from its own list prices: the ledger never
holds less than the upstream billed.

- several tools of one kind offered at once (both search variants, a 1g and a 64g code
  interpreter, two image tools): the output does not show which made a call, so each call
  is billed at the dearest it may be, flagged `tool_unit_assumed`;
- a container's 20-minute session claimed on every path (JSON, streamed, background), at
  the memory it was made with even when later named by its id;
- a container id of another tenant: the 404 of an unknown one, never forwarded;
- a stream cut before its usage: the tool calls seen are billed, and the most the tools may
  still have billed;
- `max_tool_calls`: a bad one is a 400; none is forwarded as the default the worst case assumed.
"""

import asyncio
import json
from decimal import Decimal

import aiohttp
import openai
import pytest
from sqlalchemy import select, text

from billing.db.tables import ledger_entries
from billing.db.tenants import update_tenant

D = Decimal
MILLION = D(1_000_000)


async def billed(proxy, engine) -> dict[str, object]:
    await proxy.state.writer.flush(timeout=5)
    async with engine.connect() as conn:
        return {r.upstream_response_id: r for r in await conn.execute(select(ledger_entries))}


def upstream_bill(simulator) -> dict[str, Decimal]:
    from proxy.simulator.usage import _priced
    return {record["id"]: sum(_priced(record)[1].values(), D(0)) for record in simulator.state.usage_records}


def upstream_tools(simulator) -> dict[str, dict]:
    return {record["id"]: record.get("tool_calls") or {} for record in simulator.state.usage_records}


async def test_both_search_variants_bill_every_search_at_the_dearer(proxy, client, engine, simulator):
    reply = await client.responses.create(model="gpt-4o", input="news?",
                                          tools=[{"type": "web_search"}, {"type": "web_search_preview"}],
                                          extra_headers={"x-sim-tool-calls": "5"})
    row = (await billed(proxy, engine))[reply.id]
    # upstream: 5 plain searches at 10.00 and 5 preview ones at 25.00 per 1,000 = 0.175
    assert upstream_tools(simulator)[reply.id] == {"web_search": 5, "web_search_preview": 5}
    # the ledger: ten searches, each possibly a preview one, 10 x 0.025 = 0.25
    assert row.tool_calls == {"web_search|web_search_preview": 10} and row.cost_tool_calls == D("0.25")
    assert "tool_unit_assumed" in row.usage_flags
    assert row.cost_total >= upstream_bill(simulator)[reply.id]


async def test_two_code_interpreters_bill_each_container_at_the_larger(proxy, client, engine, simulator):
    tools = [{"type": "code_interpreter", "container": {"type": "auto", "memory_limit": "1g"}},
             {"type": "code_interpreter", "container": {"type": "auto", "memory_limit": "64g"}}]
    reply = await client.responses.create(model="gpt-5.5", input="run both", tools=tools)
    row = (await billed(proxy, engine))[reply.id]
    # upstream: a 1g (0.03) and a 64g (1.92) container = 1.95; the ledger cannot tell which is which
    assert upstream_tools(simulator)[reply.id] == {"container.1g": 1, "container.64g": 1}
    assert row.tool_calls == {"container.1g|container.64g": 2} and row.cost_tool_calls == D("3.84")
    assert row.cost_total >= upstream_bill(simulator)[reply.id]


async def test_two_image_tools_bill_each_image_at_the_dearer(proxy, client, engine, simulator):
    tools = [{"type": "image_generation", "model": "gpt-image-1-mini", "quality": "low", "size": "1024x1024"},
             {"type": "image_generation", "model": "gpt-image-1", "quality": "high", "size": "1024x1024"}]
    reply = await client.responses.create(model="gpt-5.5", input="draw", tools=tools,
                                          extra_headers={"x-sim-tool-calls": "2"})
    row = (await billed(proxy, engine))[reply.id]
    # four images, each possibly a high gpt-image-1 one at 0.167
    assert row.cost_tool_calls == 4 * D("0.167")
    assert row.cost_total >= upstream_bill(simulator)[reply.id]


async def stream_text(proxy, key, body, headers=None) -> list[dict]:
    async with aiohttp.ClientSession() as http:
        async with http.post(proxy.url + "/v1/responses", json={**body, "stream": True},
                             headers={"authorization": f"Bearer {key}", **(headers or {})}) as answer:
            assert answer.status == 200, await answer.text()
            raw = await answer.read()
    return [json.loads(line[6:]) for line in raw.decode().splitlines() if line.startswith("data: ")]


async def test_a_streamed_container_is_billed_once_a_session_over_several_turns(proxy, tenant_key, engine,
                                                                              simulator):
    made = await stream_text(proxy, tenant_key.secret, {
        "model": "gpt-5.5", "input": "start",
        "tools": [{"type": "code_interpreter", "container": {"type": "auto", "memory_limit": "64g"}}]})
    final = made[-1]["response"]
    container = next(i["container_id"] for i in final["output"] if i["type"] == "code_interpreter_call")
    ids = [final["id"]]
    for turn in range(2):
        events = await stream_text(proxy, tenant_key.secret, {
            "model": "gpt-5.5", "input": f"turn {turn}",
            "tools": [{"type": "code_interpreter", "container": container}]})
        ids.append(events[-1]["response"]["id"])
    rows, bill = await billed(proxy, engine), upstream_bill(simulator)
    assert [rows[i].tool_calls for i in ids] == [{"container.64g": 1}, {}, {}]
    assert [rows[i].cost_total for i in ids] == [bill[i] for i in ids]


async def test_a_container_named_by_its_id_is_billed_at_the_memory_it_was_made_with(proxy, client, engine,
                                                                                   simulator, tenant_key):
    first = await client.responses.create(model="gpt-5.5", input="start", tools=[
        {"type": "code_interpreter", "container": {"type": "auto", "memory_limit": "64g"}}])
    container = next(item.container_id for item in first.output if item.type == "code_interpreter_call")
    # 21 minutes pass, for the upstream and for the proxy's record of the session
    when, memory = simulator.state.containers[container]
    simulator.state.containers[container] = (when - 21 * 60, memory)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE container_sessions SET session_started_at = session_started_at "
                                "- interval '21 minutes'"))
    again = await client.responses.create(model="gpt-5.5", input="again", previous_response_id=first.id,
                                          tools=[{"type": "code_interpreter", "container": container}])
    rows, bill = await billed(proxy, engine), upstream_bill(simulator)
    # a new session of a 64g container: 1.92, not the 1g price of 0.03
    assert upstream_tools(simulator)[again.id] == {"container.64g": 1}
    assert rows[again.id].tool_calls == {"container.64g": 1} and rows[again.id].cost_tool_calls == D("1.92")
    assert rows[again.id].cost_total == bill[again.id]


async def test_a_background_containers_session_is_claimed_when_it_settles(proxy, client, engine, simulator,
                                                                         tenant_key):
    queued = await client.responses.create(model="gpt-5.5", input="long job", background=True, tools=[
        {"type": "code_interpreter", "container": {"type": "auto", "memory_limit": "16g"}}],
                                           extra_headers={"x-sim-background-ms": "100"})
    for _ in range(200):
        rows = await billed(proxy, engine)
        if queued.id in rows:
            break
        await asyncio.sleep(0.05)
    done = await client.responses.retrieve(queued.id)
    container = next(item.container_id for item in done.output if item.type == "code_interpreter_call")
    again = await client.responses.create(model="gpt-5.5", input="again", previous_response_id=queued.id,
                                          tools=[{"type": "code_interpreter", "container": container}])
    rows, bill = await billed(proxy, engine), upstream_bill(simulator)
    assert rows[queued.id].tool_calls == {"container.16g": 1}
    assert rows[again.id].tool_calls == {} and "container_session_continued" in rows[again.id].usage_flags
    assert [rows[i].cost_total for i in (queued.id, again.id)] == [bill[queued.id], bill[again.id]]


async def test_another_tenants_container_is_not_found(proxy, client, stranger, engine, simulator):
    first = await client.responses.create(model="gpt-5.5", input="mine", tools=[
        {"type": "code_interpreter", "container": {"type": "auto", "memory_limit": "64g"}}])
    container = next(item.container_id for item in first.output if item.type == "code_interpreter_call")
    forwarded = len(simulator.state.usage_records)
    for tool in ({"type": "code_interpreter", "container": container},
                 {"type": "shell", "environment": {"type": "container_reference", "container_id": container}},
                 {"type": "code_interpreter", "container": "cntr_never_made"}):
        with pytest.raises(openai.NotFoundError) as refused:
            await stranger.responses.create(model="gpt-5.5", input="theirs", tools=[tool])
        assert refused.value.body["message"].startswith("Container with id ")
    assert len(simulator.state.usage_records) == forwarded  # none of them went upstream


async def settled(proxy, engine, response_id):
    for _ in range(200):
        rows = await billed(proxy, engine)
        if response_id in rows:
            return rows[response_id]
        await asyncio.sleep(0.05)
    raise AssertionError(f"{response_id} was never billed")


async def test_a_stream_cut_before_its_usage_is_billed_from_the_stored_response(proxy, tenant_key, engine, simulator):
    body = {"model": "gpt-5.5", "input": "draw three",
            "tools": [{"type": "image_generation", "model": "gpt-image-1", "quality": "high", "size": "1024x1024"}]}
    knobs = {"x-sim-tool-calls": "3", "x-sim-output-tokens": "20"}
    whole = await stream_text(proxy, tenant_key.secret, body, knobs)
    # the same reply again, cut on the way just before its last event (the one with the usage)
    async with aiohttp.ClientSession() as http:
        async with http.post(proxy.url + "/v1/responses", json={**body, "stream": True},
                             headers={"authorization": f"Bearer {tenant_key.secret}", **knobs,
                                      "x-sim-cut-after": str(len(whole) - 1)}) as answer:
            raw = (await answer.read()).decode()
    cut_id = json.loads(next(line for line in raw.splitlines() if line.startswith("data: "))[6:])["response"]["id"]
    # the upstream keeps the response: the poller reads it back and bills its true usage
    row = await settled(proxy, engine, cut_id)
    assert not row.estimated and row.tool_calls == {"image_generation.gpt-image-1.high.1024x1024": 3}
    assert row.cost_total == upstream_bill(simulator)[cut_id]


async def test_an_unstored_stream_the_proxy_stops_reading_bills_its_worst_case(aiohttp_server, engine, database_url,
                                                                              proxy_settings, tenant_key, simulator):
    from dataclasses import replace

    from proxy.app import create_app
    from tests.conftest import RunningProxy

    # the upstream goes quiet after its first events: the proxy stops reading, the upstream may
    # go on, and keeps nothing to read back
    settings = replace(proxy_settings, upstream_idle_timeout=0.3)
    server = await aiohttp_server(create_app(settings, database_url))
    proxy = RunningProxy(str(server.make_url("")).rstrip("/"), server.app, settings)
    body = {"model": "gpt-5.5", "input": "search", "tools": [{"type": "web_search"}], "store": False,
            "max_output_tokens": 2000}
    events = await stream_text(proxy, tenant_key.secret, body, {"x-sim-tool-calls": "4", "x-sim-stall-after": "3"})
    row = (await billed(proxy, engine))[events[0]["response"]["id"]]
    # what its admission reserved: ten searches (the max_tool_calls forwarded), its whole output cap
    assert row.estimated and row.tool_calls == {"web_search": 10} and row.output_tokens == 2000
    assert {"tool_units_worst_case", "output_worst_case"} <= set(row.usage_flags)
    assert row.cost_total >= upstream_bill(simulator)[events[0]["response"]["id"]]


async def test_a_stream_cut_by_an_error_event_bills_the_tool_calls_seen(proxy, tenant_key, engine, simulator):
    body = {"model": "gpt-5.5", "input": "search", "tools": [{"type": "web_search"}]}
    knobs = {"x-sim-tool-calls": "4"}
    whole = await stream_text(proxy, tenant_key.secret, body, knobs)
    events = await stream_text(proxy, tenant_key.secret, body, {**knobs, "x-sim-error-after": str(len(whole) - 1)})
    cut_id = events[0]["response"]["id"]
    row = (await billed(proxy, engine))[cut_id]
    # the upstream said it stopped: the four searches seen, no more
    assert row.estimated and row.tool_calls == {"web_search": 4} and "tool_units_worst_case" not in row.usage_flags


@pytest.mark.parametrize("value", [-1, 1001, 10**13, 10**20, 2.5, "3", True])
async def test_a_bad_max_tool_calls_is_a_400(client, simulator, value):
    with pytest.raises(openai.BadRequestError) as refused:
        await client.responses.create(model="gpt-5.5", input="x", tools=[{"type": "web_search"}],
                                      extra_body={"max_tool_calls": value})
    assert refused.value.body["param"] == "max_tool_calls"
    assert simulator.state.usage_records == []


async def test_without_max_tool_calls_the_upstream_is_held_to_the_assumed_default(proxy, client, engine,
                                                                                 simulator, tenant_key):
    await update_tenant(engine, tenant_key.tenant, monthly_budget_usd=D("500"))  # the worst case is priced
    # the upstream would make 25 searches; the worst case assumed 10, and the proxy forwards 10
    reply = await client.responses.create(model="gpt-5.5", input="search a lot", tools=[{"type": "web_search"}],
                                          extra_headers={"x-sim-tool-calls": "25"})
    assert reply.max_tool_calls == proxy.state.limits.tool_calls == 10
    row = (await billed(proxy, engine))[reply.id]
    assert row.tool_calls == {"web_search": 10} and row.cost_total == upstream_bill(simulator)[reply.id]
    # a dated tool name of a later version still counts as that tool
    dated = await client.responses.create(model="gpt-5.5", input="search", tools=[{"type": "web_search_2027_01_01"}])
    assert dated.max_tool_calls == 10


async def test_a_failed_stream_of_a_model_that_reasons_by_default_allows_for_its_reasoning(proxy, tenant_key,
                                                                                          engine, simulator):
    # seed-1-6 thinks unless told not to: nothing in the request asks for reasoning. The stream
    # fails after `response.created` and `response.in_progress`, before any thinking streams by.
    body = {"model": "seed-1-6-250915", "input": "think about it"}
    events = await stream_text(proxy, tenant_key.secret, body, {"x-sim-error-after": "2"})
    row = (await billed(proxy, engine))[events[0]["response"]["id"]]
    assert row.estimated and "reasoning_allowance" in row.usage_flags and row.reasoning_tokens >= 4096
    # turned off, the same failed call allows for none
    off = await stream_text(proxy, tenant_key.secret, {**body, "thinking": {"type": "disabled"}},
                            {"x-sim-error-after": "2"})
    row = (await billed(proxy, engine))[off[0]["response"]["id"]]
    assert row.estimated and row.reasoning_tokens == 0


async def test_a_failed_turn_of_a_conversation_is_estimated_with_the_context_it_carries(proxy, client, tenant_key,
                                                                                       engine, simulator):
    conversation = await client.conversations.create()
    first = await client.responses.create(model="gpt-5.5", input="read this long document",
                                          conversation=conversation.id,
                                          extra_headers={"x-sim-extra-input-tokens": "300000"})
    carried = first.usage.input_tokens + first.usage.output_tokens
    events = await stream_text(proxy, tenant_key.secret, {"model": "gpt-5.5", "input": "and now?",
                                                          "conversation": conversation.id},
                               {"x-sim-error-after": "2"})
    row = (await billed(proxy, engine))[events[0]["response"]["id"]]
    # the conversation's context (the first turn's input and output) is read again, and billed
    assert row.estimated and row.input_tokens >= carried > 300_000
    assert row.cost_total >= upstream_bill(simulator)[events[0]["response"]["id"]]


async def test_a_failed_call_with_a_file_the_proxy_cannot_size_is_estimated_at_the_context_window(
        proxy, tenant_key, engine, simulator):
    body = {"model": "gpt-5.5", "input": [{"role": "user", "content": [
        {"type": "input_file", "file_id": "file-abc"}, {"type": "input_text", "text": "summarise"}]}]}
    events = await stream_text(proxy, tenant_key.secret, body, {"x-sim-extra-input-tokens": "300000",
                                                                "x-sim-error-after": "2"})
    row = (await billed(proxy, engine))[events[0]["response"]["id"]]
    assert row.estimated and row.input_tokens >= proxy.state.limits.context_window
    assert "input_unseen" in row.usage_flags
    assert row.cost_total >= upstream_bill(simulator)[events[0]["response"]["id"]]
