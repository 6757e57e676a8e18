"""The proxy as a real server, the official openai SDK as client, the simulated upstream
behind it, real PostgreSQL for the ledger."""

import io
import time
from decimal import Decimal

import aiohttp
import openai
import orjson
import pytest
from sqlalchemy import select

from billing.db.reports import monthly_report
from billing.db.tables import ledger_entries
from proxy.app import create_app
from proxy.gateway.state import STATE
from tests.conftest import UPSTREAM_KEY

MILLION = Decimal(1_000_000)
SEED_TIER_1 = {"input": Decimal("0.25"), "cached": Decimal("0.05"), "output": Decimal("2.00")}
LONG_SYSTEM_PROMPT = "你是一个文学分析助手。请简洁清晰地回答问题。这是《麦琪的礼物》的节选..." + "一块八毛七。" * 200


def seed_cost(usage, stored_tokens: int = 0) -> Decimal:
    """The contract formula, written out again independently of billing.pricing, plus the
    cache storage of `stored_tokens` for BytePlus' default 3 days (72 hours at 0.0083)."""
    cached = usage.input_tokens_details.cached_tokens
    return ((usage.input_tokens - cached) * SEED_TIER_1["input"] + cached * SEED_TIER_1["cached"]
            + usage.output_tokens * SEED_TIER_1["output"]  # reasoning at the output price
            + stored_tokens * 72 * Decimal("0.0083")) / MILLION


async def ledger_rows(proxy, engine):
    await proxy.state.writer.flush(timeout=5)
    async with engine.connect() as conn:
        return (await conn.execute(select(ledger_entries).order_by(ledger_entries.c.started_at))).all()


async def test_seed_document_sdk_examples_are_billed_exactly(proxy, client, engine, simulator, tenant_key):
    # The seed's first example: prefix caching on, thinking off.
    response = await client.responses.create(
        model="seed-1-6-250915",
        input=[{"role": "system", "content": LONG_SYSTEM_PROMPT}],
        extra_body={"caching": {"type": "enabled", "prefix": True}, "thinking": {"type": "disabled"}},
    )
    assert response.id.startswith("resp_") and response.usage.input_tokens >= 256
    # The second: session caching through previous_response_id.
    second = await client.responses.create(
        model="seed-1-6-250915",
        previous_response_id=response.id,
        input=[{"role": "user", "content": "请用5个要点简要概括这个故事。"}],
        extra_body={"caching": {"type": "enabled"}, "thinking": {"type": "disabled"}},
    )
    cached_tokens = second.usage.input_tokens_details.cached_tokens
    assert cached_tokens == response.usage.input_tokens > 0
    # Thinking mode: reasoning tokens, billed at the output price.
    thinking = await client.responses.create(
        model="seed-1-6-250915", input=[{"role": "user", "content": "请分析这道数学题的解法..."}],
        extra_body={"thinking": {"type": "enabled"}},
    )
    assert thinking.usage.output_tokens_details.reasoning_tokens > 0

    # The upstream saw the vendor fields at the top level, and only the upstream key.
    seen = simulator.state.requests
    assert [r["authorization"] for r in seen] == [f"Bearer {UPSTREAM_KEY}"] * 3
    assert seen[0]["body"]["caching"] == {"type": "enabled", "prefix": True}
    assert seen[1]["body"]["previous_response_id"] == response.id
    assert tenant_key.secret not in orjson.dumps(seen).decode()

    rows = await ledger_rows(proxy, engine)
    replies = [response, second, thinking]
    # stored in the context cache: the prefix (its input), the session (input and output), nothing
    stored = [response.usage.input_tokens, second.usage.input_tokens + second.usage.output_tokens, 0]
    assert len(rows) == 3
    for row, reply, kept in zip(rows, replies, stored):
        assert row.upstream_response_id == reply.id
        assert (row.input_tokens, row.cached_tokens, row.output_tokens, row.reasoning_tokens) == (
            reply.usage.input_tokens, reply.usage.input_tokens_details.cached_tokens, reply.usage.output_tokens,
            reply.usage.output_tokens_details.reasoning_tokens)
        assert row.cost_total == seed_cost(reply.usage, kept)
        assert (row.cache_storage_tokens, row.cache_storage_hours) == ((kept, 72) if kept else (0, 0))
        assert (row.model, row.requested_model, row.tenant_id) == ("seed-1-6", "seed-1-6-250915",
                                                                  tenant_key.tenant_id)

    report = await monthly_report(engine, rows[0].started_at.strftime("%Y-%m"), by=("tenant", "model"))
    assert report.total_cost == sum((seed_cost(r.usage, kept) for r, kept in zip(replies, stored)), Decimal(0))
    assert report.rows[0].requests == 3 and report.rows[0].tokens["cached_tokens"] == cached_tokens


async def test_streaming_is_relayed_event_by_event_and_billed(proxy, client, engine):
    stream = await client.responses.create(model="seed-1-6-250915", input="Hello!", stream=True,
                                           extra_body={"thinking": {"type": "enabled"}})
    events = [event async for event in stream]
    types = [e.type for e in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert "response.output_text.delta" in types
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response

    rows = await ledger_rows(proxy, engine)
    assert len(rows) == 1
    row = rows[0]
    assert row.stream is True and row.status == "completed" and row.upstream_response_id == final.id
    assert (row.input_tokens, row.output_tokens, row.reasoning_tokens) == (
        final.usage.input_tokens, final.usage.output_tokens, final.usage.output_tokens_details.reasoning_tokens)
    assert row.cost_total == seed_cost(final.usage)


async def test_incomplete_response_is_billed_from_its_usage(proxy, client, engine):
    stream = await client.responses.create(model="gpt-4o-mini", input="Hello!", stream=True, max_output_tokens=5)
    events = [event async for event in stream]
    assert events[-1].type == "response.incomplete"
    rows = await ledger_rows(proxy, engine)
    assert len(rows) == 1 and rows[0].status == "incomplete" and rows[0].output_tokens == 5


async def test_slow_stream_first_event_arrives_long_before_the_end(proxy, client):
    started = time.perf_counter()
    stream = await client.responses.create(model="gpt-4o-mini", input="Hi", stream=True,
                                           extra_headers={"x-sim-delay-ms": "150", "x-sim-output-tokens": "12"})
    first_at = None
    async for _ in stream:
        if first_at is None:
            first_at = time.perf_counter() - started
    total = time.perf_counter() - started
    # 19 events at 150 ms each: about 2.9 s in all; the first one after about 150 ms.
    assert total > 2.5
    assert first_at < 1.0


async def test_curl_shaped_literal_extra_body_and_messages_alias(proxy, tenant_key, simulator, engine):
    headers = {"Authorization": f"Bearer {tenant_key.secret}", "Content-Type": "application/json"}
    curl_body = {
        "model": "seed-1-6-250915",
        "previous_response_id": None,
        "input": [{"role": "system", "content": "你是一个文学分析助手..."},
                  {"role": "user", "content": "请分析这段文字的主题"}],
        "extra_body": {"caching": {"type": "enabled", "prefix": True}, "thinking": {"type": "disabled"}},
    }
    del curl_body["previous_response_id"]
    async with aiohttp.ClientSession() as http:
        async with http.post(proxy.url + "/v1/responses", json=curl_body, headers=headers) as reply:
            assert reply.status == 200
            assert reply.headers["x-request-id"]
        seed_curl = {"model": "gpt-4", "messages": [{"role": "user", "content": "Hello!"}]}
        async with http.post(proxy.url + "/v1/responses", json=seed_curl, headers=headers) as reply:
            assert reply.status == 200
    forwarded = [r["body"] for r in simulator.state.requests]
    assert "extra_body" not in forwarded[0] and forwarded[0]["caching"] == {"type": "enabled", "prefix": True}
    assert forwarded[1] == {"model": "gpt-4", "input": [{"role": "user", "content": "Hello!"}]}
    assert len(await ledger_rows(proxy, engine)) == 2


# --- errors: clear, OpenAI-shaped, nothing billed, the proxy keeps serving -------------------

async def post_raw(url, body: bytes, secret: str | None):
    headers = {"Content-Type": "application/json"}
    if secret:
        headers["Authorization"] = f"Bearer {secret}"
    async with aiohttp.ClientSession() as http:
        async with http.post(url + "/v1/responses", data=io.BytesIO(body), headers=headers) as reply:
            return reply.status, await reply.json(content_type=None)


async def test_bad_requests_get_openai_shaped_errors_and_bill_nothing(proxy, client, tenant_key, engine):
    cases = [
        (b'{"model":"gpt-4o","input":"x"}', None, 401, "invalid_api_key"),
        (b'{"model":"gpt-4o","input":"x"}', "bpk_wrong", 401, "invalid_api_key"),
        (b"{not json", tenant_key.secret, 400, "invalid_request_error"),
        (b'{"model":"gpt-4o","input":"' + b"x" * (2 * 1024 * 1024) + b'"}', tenant_key.secret, 413,
         "request_too_large"),
        (b'{"model":"no-such-model","input":"x"}', tenant_key.secret, 400, "model_not_priced"),
        (b'{"model":"gpt-4o","stream":"yes"}', tenant_key.secret, 400, "invalid_request_error"),
    ]
    for body, secret, status, code in cases:
        got_status, payload = await post_raw(proxy.url, body, secret)
        assert got_status == status, (body[:40], payload)
        assert set(payload["error"]) == {"message", "type", "param", "code"}
        assert payload["error"]["code"] == code and payload["error"]["message"]

    async with openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key="bpk_nope", max_retries=0) as stranger:
        with pytest.raises(openai.AuthenticationError):
            await stranger.responses.create(model="gpt-4o", input="x")
    assert await ledger_rows(proxy, engine) == []
    ok = await client.responses.create(model="gpt-4o", input="still serving?")
    assert ok.status == "completed" and len(await ledger_rows(proxy, engine)) == 1


async def test_upstream_errors_are_relayed_with_their_status_and_body(proxy, client, engine):
    with pytest.raises(openai.InternalServerError) as error:
        await client.responses.create(model="gpt-4o", input="x", extra_headers={"x-sim-status": "503"})
    assert error.value.status_code == 503 and "Simulated upstream failure" in str(error.value)
    with pytest.raises(openai.NotFoundError):
        await client.responses.create(model="gpt-4o", input="x", previous_response_id="resp_unknown")
    assert await ledger_rows(proxy, engine) == []


async def test_upstream_timeout_is_504(aiohttp_server, engine, database_url, proxy_settings, tenant_key):
    from dataclasses import replace
    app = create_app(replace(proxy_settings, upstream_read_timeout=0.3), database_url)
    server = await aiohttp_server(app)
    status, payload = await post_raw(str(server.make_url("")).rstrip("/"), b'{"model":"gpt-4o","input":"x"}',
                                     tenant_key.secret)
    assert status == 200  # control: fast enough
    async with openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key=tenant_key.secret,
                                  max_retries=0) as client:
        with pytest.raises(openai.APIStatusError) as error:
            await client.responses.create(model="gpt-4o", input="x", extra_headers={"x-sim-delay-ms": "1000"})
    assert error.value.status_code == 504 and error.value.body["code"] == "upstream_timeout"


async def test_unreachable_upstream_is_502(aiohttp_server, engine, database_url, proxy_settings, tenant_key,
                                           unused_tcp_port):
    from dataclasses import replace
    settings = replace(proxy_settings, upstream_base_url=f"http://127.0.0.1:{unused_tcp_port}/v1")
    server = await aiohttp_server(create_app(settings, database_url))
    async with openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key=tenant_key.secret,
                                  max_retries=0) as client:
        for stream in (False, True):
            with pytest.raises(openai.APIStatusError) as error:
                await client.responses.create(model="gpt-4o", input="x", stream=stream)
            assert error.value.status_code == 502 and error.value.body["code"] == "upstream_unreachable"
    await server.app[STATE].writer.flush(timeout=5)
    async with engine.connect() as conn:
        assert (await conn.execute(select(ledger_entries))).all() == []


async def test_health_and_readiness(proxy):
    async with aiohttp.ClientSession() as http:
        async with http.get(proxy.url + "/healthz") as reply:
            assert reply.status == 200 and (await reply.json())["status"] == "ok"
        async with http.get(proxy.url + "/readyz") as reply:
            assert reply.status == 200 and (await reply.json())["database"] == "ok"
