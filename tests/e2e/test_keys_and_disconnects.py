"""Revocation through a running proxy, and usage kept when the client walks away."""

import asyncio
import time

import aiohttp
import openai
from sqlalchemy import select

from billing.db.keys import revoke_key
from billing.db.tables import ledger_entries


async def test_revoked_key_stops_working_within_a_second(proxy, tenant_key, engine):
    async with openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=tenant_key.secret, max_retries=0) as client:
        await client.responses.create(model="gpt-4o-mini", input="before")
        await revoke_key(engine, tenant_key.key_id)
        revoked_at = time.monotonic()
        while True:
            try:
                await client.responses.create(model="gpt-4o-mini", input="after")
            except openai.AuthenticationError as error:
                assert error.body["code"] == "invalid_api_key"
                break
            assert time.monotonic() - revoked_at < 1.0, "revoked key still accepted after 1 s"
            await asyncio.sleep(0.01)


async def test_client_disconnect_mid_stream_still_bills_the_whole_reply(proxy, tenant_key, engine, simulator):
    headers = {"Authorization": f"Bearer {tenant_key.secret}", "x-sim-delay-ms": "50",
               "x-sim-output-tokens": "20"}
    async with aiohttp.ClientSession() as http:
        reply = await http.post(proxy.url + "/v1/responses", headers=headers,
                                json={"model": "gpt-4o-mini", "input": "Hi", "stream": True})
        assert reply.status == 200
        await reply.content.readuntil(b"\n\n")  # the first event, then hang up
        reply.close()
    # The upstream goes on for about 27 x 50 ms; the proxy keeps reading it to the end.
    deadline = time.monotonic() + 10
    while True:
        await proxy.state.writer.flush(timeout=5)
        async with engine.connect() as conn:
            rows = (await conn.execute(select(ledger_entries))).all()
        if rows or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert len(rows) == 1
    assert rows[0].status == "completed" and rows[0].output_tokens == 20 and rows[0].stream is True


async def test_request_with_large_body_under_the_limit_is_forwarded(proxy, tenant_key, simulator):
    big = "x" * (700 * 1024)  # past the 512 KiB mark where the body is streamed upstream in chunks
    async with openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=tenant_key.secret, max_retries=0) as client:
        reply = await client.responses.create(model="gpt-4o-mini", input=big)
    assert reply.usage.input_tokens == len(big) // 4
    assert simulator.state.requests[-1]["body"]["input"] == big
