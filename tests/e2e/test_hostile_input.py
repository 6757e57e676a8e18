"""Hostile clients against the running proxy: bad bodies, oversized and repeated headers,
slowloris. Each gets a clear 4xx or a closed connection, never a 5xx; nothing reaches the
upstream or the ledger; and the proxy keeps serving."""

import asyncio
import gzip
import time
from dataclasses import replace

import aiohttp
import orjson
import pytest
from sqlalchemy import select

from billing.db.tables import ledger_entries
from proxy.app import create_app

BAD_BODIES = [
    (b'{"model": "gpt-4o-mini", "input": "\xff\xfe"}', "not UTF-8"),
    (b"[" * 3000 + b"]" * 3000, "deep"),
    (b'{"a":' * 3000 + b"1" + b"}" * 3000, "deep objects"),
    (b'{"model": "gpt-4o-mini", "model": "o1", "input": "x"}', "duplicate model"),
    (b'{"model": 7, "input": "x"}', "model not a string"),
    (b'{"model": "gpt-4o-mini", "stream": "yes", "input": "x"}', "stream not a boolean"),
    (b'{"model": "gpt-4o-mini", "input": 42}', "input not a string or array"),
    (b'{"model": "gpt-4o-mini", "input": "x"', "truncated"),
    (b"", "empty"),
    (b'"just a string"', "not an object"),
]


async def raw_exchange(host, port, data: bytes, pause: float = 0.0, pieces: int = 1) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        step = max(1, len(data) // pieces)
        for start in range(0, len(data), step):
            writer.write(data[start:start + step])
            await writer.drain()
            if pause:
                await asyncio.sleep(pause)
        return await asyncio.wait_for(reader.read(65536), 10)
    except (ConnectionError, asyncio.IncompleteReadError):
        return b""
    finally:
        writer.close()


@pytest.mark.parametrize("body,why", BAD_BODIES, ids=[why for _, why in BAD_BODIES])
async def test_bad_bodies_are_a_400_and_reach_nobody(proxy, tenant_key, simulator, engine, body, why):
    async with aiohttp.ClientSession() as http:
        async with http.post(proxy.url + "/v1/responses", data=body,
                             headers={"Authorization": f"Bearer {tenant_key.secret}",
                                      "Content-Type": "application/json"}) as reply:
            assert reply.status == 400, why
            error = (await reply.json())["error"]
            assert error["type"] == "invalid_request_error" and error["message"]
            assert reply.headers["x-request-id"]
    assert simulator.state.requests == []
    await proxy.state.writer.flush(timeout=5)
    async with engine.connect() as conn:
        assert (await conn.execute(select(ledger_entries))).all() == []


async def test_oversized_and_repeated_headers(proxy, tenant_key):
    async with aiohttp.ClientSession() as http:
        async with http.post(proxy.url + "/v1/responses", json={"model": "gpt-4o-mini", "input": "x"},
                             headers={"Authorization": f"Bearer {tenant_key.secret}",
                                      "x-padding": "p" * 20000}) as reply:
            assert 400 <= reply.status < 500
        # Two credentials: ambiguous, so neither is used.
        headers = [("Authorization", f"Bearer {tenant_key.secret}"), ("Authorization", "Bearer bpk_other")]
        async with http.post(proxy.url + "/v1/responses", json={"model": "gpt-4o-mini", "input": "x"},
                             headers=headers) as reply:
            assert reply.status == 401 and (await reply.json())["error"]["code"] == "invalid_api_key"
        async with http.post(proxy.url + "/v1/responses", json={"model": "gpt-4o-mini", "input": "x"},
                             headers={"Authorization": f"Bearer {tenant_key.secret}"}) as reply:
            assert reply.status == 200  # still serving


@pytest.fixture
async def impatient_proxy(aiohttp_server, engine, database_url, proxy_settings):
    """The proxy as `serve` runs it, with a 1 s client timeout."""
    settings = replace(proxy_settings, client_timeout=1.0)
    server = await aiohttp_server(create_app(settings, database_url), keepalive_timeout=settings.client_timeout)
    return server


async def test_slowloris_headers_are_cut_off(impatient_proxy, tenant_key):
    started = time.monotonic()
    request = (b"POST /v1/responses HTTP/1.1\r\nHost: x\r\n" + b"x-slow: y\r\n" * 40)
    answer = await raw_exchange(impatient_proxy.host, impatient_proxy.port, request, pause=0.1, pieces=40)
    # One header line every 0.1 s would take 4 s; the connection is closed after about 1 s.
    assert b"200" not in answer
    assert time.monotonic() - started < 3.5


async def test_slow_body_is_a_408(impatient_proxy, tenant_key):
    body = b'{"model": "gpt-4o-mini", "input": "' + b"x" * 100 + b'"}'
    head = (f"POST /v1/responses HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tenant_key.secret}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    started = time.monotonic()
    answer = await raw_exchange(impatient_proxy.host, impatient_proxy.port, head + body[:10])
    assert answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer
    assert time.monotonic() - started < 3
    async with aiohttp.ClientSession() as http:  # and the proxy still serves
        async with http.post(str(impatient_proxy.make_url("/v1/responses")),
                             json={"model": "gpt-4o-mini", "input": "x"},
                             headers={"Authorization": f"Bearer {tenant_key.secret}"}) as reply:
            assert reply.status == 200


async def test_headers_travel_by_allow_list_in_both_directions(proxy, tenant_key, simulator, engine):
    """What would act on the shared account for one tenant never goes upstream; what
    describes the operator's account (its rate-limit standing, organization) never comes back."""
    sent = {"Authorization": f"Bearer {tenant_key.secret}", "Idempotency-Key": "tenant-chosen-key",
            "X-HTTP-Method-Override": "DELETE", "X-Forwarded-For": "203.0.113.9", "Forwarded": "for=203.0.113.9",
            "OpenAI-Organization": "org-tenant", "User-Agent": "hostile/1.0"}
    async with aiohttp.ClientSession() as http:
        async with http.post(proxy.url + "/v1/responses", headers=sent,
                             json={"model": "gpt-4o-mini", "input": "x"}) as reply:
            assert reply.status == 200
            returned = {k.lower() for k in reply.headers}
    upstream_saw = {k.lower(): v for k, v in simulator.state.requests[-1]["headers"].items()}
    for name in ("idempotency-key", "x-http-method-override", "x-forwarded-for", "forwarded", "openai-organization"):
        assert name not in upstream_saw
    assert upstream_saw["user-agent"] == "hostile/1.0"
    assert not {n for n in returned if n.startswith("x-ratelimit-")}
    assert not returned & {"openai-organization", "openai-project", "set-cookie"}
    assert {"openai-processing-ms", "x-upstream-request-id", "x-request-id"} <= returned


async def test_a_compressed_body_goes_upstream_decompressed_and_is_billed(proxy, tenant_key, simulator, engine):
    body = gzip.compress(orjson.dumps({"model": "gpt-4o-mini", "input": "compressed"}))
    async with aiohttp.ClientSession() as http:
        async with http.post(proxy.url + "/v1/responses", data=body, headers={
                "Authorization": f"Bearer {tenant_key.secret}", "Content-Type": "application/json",
                "Content-Encoding": "gzip"}) as reply:
            assert reply.status == 200
    forwarded = simulator.state.requests[-1]
    assert forwarded["body"]["input"] == "compressed"
    assert "content-encoding" not in {k.lower() for k in forwarded["headers"]}
    await proxy.state.writer.flush(timeout=5)
    async with engine.connect() as conn:
        assert len((await conn.execute(select(ledger_entries))).all()) == 1


@pytest.mark.parametrize("encoding, body", [
    ("gzip", b"not gzip at all"), ("gzip", gzip.compress(b'{"model": "gpt-4o-mini"}')[:12]),
    ("deflate", b"not deflate"),
])
async def test_a_body_that_is_not_in_its_content_encoding_is_a_400(proxy, tenant_key, simulator, engine, encoding,
                                                                   body):
    received = len(simulator.state.paths)
    async with aiohttp.ClientSession() as http:
        for path in ("/v1/responses", "/v1/chat/completions", "/v1/conversations"):
            async with http.post(proxy.url + path, data=body, headers={
                    "Authorization": f"Bearer {tenant_key.secret}", "Content-Type": "application/json",
                    "Content-Encoding": encoding}) as reply:
                assert reply.status == 400, (path, await reply.text())
                assert (await reply.json())["error"]["type"] == "invalid_request_error"
    assert simulator.state.paths[received:] == []


async def test_a_success_other_than_200_is_billed(client, proxy, simulator, engine):
    reply = await client.responses.with_raw_response.create(model="gpt-4o-mini", input="x",
                                                             extra_headers={"x-sim-reply-status": "201"})
    assert reply.status_code == 201
    await proxy.state.writer.flush(timeout=5)
    async with engine.connect() as conn:
        [row] = (await conn.execute(select(ledger_entries))).all()
    assert row.upstream_response_id == reply.parse().id and row.status == "completed" and not row.estimated
