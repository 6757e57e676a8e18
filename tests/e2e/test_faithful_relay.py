"""The client receives the upstream's stream byte for byte — CRLF line ends, comments,
multi-line data, fields the proxy does not know, odd chunk boundaries — and the usage is
still found."""

import asyncio
from dataclasses import replace

import aiohttp
from aiohttp import web
from sqlalchemy import select

from billing.db.tables import ledger_entries
from proxy.app import create_app
from proxy.gateway.state import STATE

RECORDED = (
    b": upstream keep-alive\r\n\r\n"
    b"event: response.created\r\n"
    b'data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_faithful",\r\n'
    b'data: "status":"in_progress","vendor_field":{"x":[1,2]},"usage":null}}\r\n\r\n'
    b"event: response.output_text.delta\n"
    b'data: {"type":"response.output_text.delta","sequence_number":1,"delta":"h\xc3\xa9llo","unknown":true}\n\n'
    b"id: 42\nretry: 1000\n\n"
    b"event: response.completed\r"
    b'data: {"type":"response.completed","sequence_number":2,"response":{"id":"resp_faithful","status":'
    b'"completed","usage":{"input_tokens":11,"input_tokens_details":{"cached_tokens":3},"output_tokens":5,'
    b'"output_tokens_details":{"reasoning_tokens":0}},"service_tier":"default"}}\r\r'
)


async def test_stream_bytes_pass_through_unchanged(aiohttp_server, engine, database_url, proxy_settings,
                                                   tenant_key):
    async def recorded_upstream(request: web.Request) -> web.StreamResponse:
        await request.read()
        stream = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await stream.prepare(request)
        for start in range(0, len(RECORDED), 7):  # chunks that cut lines, CRLFs and UTF-8 apart
            await stream.write(RECORDED[start:start + 7])
            await asyncio.sleep(0)
        await stream.write_eof()
        return stream

    upstream = web.Application()
    upstream.router.add_post("/v1/responses", recorded_upstream)
    upstream_server = await aiohttp_server(upstream)
    settings = replace(proxy_settings, upstream_base_url=str(upstream_server.make_url("/v1")))
    app = create_app(settings, database_url)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as http:
        async with http.post(server.make_url("/v1/responses"), json={"model": "gpt-4o-mini", "input": "x",
                                                                     "stream": True},
                             headers={"Authorization": f"Bearer {tenant_key.secret}"}) as reply:
            received = await reply.read()
    assert received == RECORDED

    await app[STATE].writer.flush(timeout=5)
    async with engine.connect() as conn:
        [row] = (await conn.execute(select(ledger_entries))).all()
    assert (row.upstream_response_id, row.input_tokens, row.cached_tokens, row.output_tokens) == \
        ("resp_faithful", 11, 3, 5)
