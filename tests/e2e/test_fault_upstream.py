"""Upstream faults and clients that leave: timeouts (first byte, idle between events), cut
and malformed replies, 5xx, refused connections. None crashes the proxy, each gets a clear
status, and each reply the upstream generated is billed exactly once."""

import asyncio
import time
from dataclasses import replace

import aiohttp
import orjson
import pytest
from sqlalchemy import select

from billing.db.tables import ledger_entries
from proxy.app import create_app
from proxy.gateway.state import STATE


@pytest.fixture
async def start_proxy(aiohttp_server, engine, database_url, proxy_settings):
    async def start(**changes):
        app = create_app(replace(proxy_settings, **changes), database_url)
        server = await aiohttp_server(app)
        return str(server.make_url("")).rstrip("/"), app[STATE]
    return start


async def post(url, secret, body, headers=None, read=True):
    async with aiohttp.ClientSession() as http:
        async with http.post(url + "/v1/responses", data=orjson.dumps(body),
                             headers={"Authorization": f"Bearer {secret}", **(headers or {})}) as reply:
            return reply.status, (await reply.read()) if read else b""


async def ledger(state, engine):
    await state.writer.flush(timeout=10)
    async with engine.connect() as conn:
        return (await conn.execute(select(ledger_entries))).all()


async def test_each_fault_is_a_clear_status_and_each_generated_reply_is_billed_once(
        start_proxy, tenant_key, engine, simulator):
    url, state = await start_proxy(upstream_first_byte_timeout=0.5, upstream_idle_timeout=0.5)
    plain = {"model": "gpt-4o-mini", "input": "hello"}
    streamed = {**plain, "stream": True}
    cases = [
        # (request, simulator knobs, expected status, expected in the body)
        (plain, {"x-sim-delay-ms": "1500"}, 504, b"upstream_timeout"),  # no first byte in time
        (plain, {"x-sim-malformed": "1"}, 502, b"upstream_bad_response"),
        (plain, {"x-sim-status": "500"}, 500, b"Simulated upstream failure"),  # relayed as is
        (plain, {"x-sim-status": "503"}, 503, b"Simulated upstream failure"),
        (streamed, {"x-sim-stall-after": "4"}, 200, b"response.in_progress"),  # goes quiet: cut after 0.5 s
        (streamed, {"x-sim-cut-after": "5"}, 200, b"response.created"),
        (streamed, {"x-sim-error-after": "3"}, 200, b"event: error"),
        (plain, {}, 200, b'"usage"'),  # and the proxy still works
    ]
    for body, knobs, status, expected in cases:
        started = time.monotonic()
        got_status, got_body = await post(url, tenant_key.secret, body, knobs)
        assert (got_status, expected in got_body) == (status, True), (knobs, got_status, got_body[:200])
        assert time.monotonic() - started < 3
    deadline = time.monotonic() + 10  # the quiet and the cut stream are read back by the poller
    while len(rows := await ledger(state, engine)) < 6 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    billed = simulator.state.billed
    assert len(rows) == len(billed) == 6  # the two 5xx generated nothing
    by_id = {r.upstream_response_id: r for r in rows}
    assert set(by_id) - {None} <= set(billed)
    # no first byte, a body that is not JSON, an error event: estimates
    estimated = [r for r in rows if r.estimated]
    assert len(estimated) == 3 and all(r.status == "usage_missing" for r in estimated)
    # the quiet and the cut stream are stored responses: read back, their true usage; and the last call
    exact = [r for r in rows if not r.estimated]
    assert len(exact) == 3 and all(r.status == "completed" for r in exact)


async def test_refused_connection_is_retried_once_then_502_and_not_billed(
        start_proxy, tenant_key, engine, unused_tcp_port_factory, monkeypatch):
    import proxy.gateway.upstream
    monkeypatch.setattr(proxy.gateway.upstream, "RETRY_PAUSE_SECONDS", 1.0)  # wide margins on both sides of the start
    port = unused_tcp_port_factory()
    url, state = await start_proxy(upstream_base_url=f"http://127.0.0.1:{port}/v1")
    late_upstream = []

    async def upstream_comes_up():  # between the first attempt and the retry
        from tests.conftest import UPSTREAM_KEY
        from proxy.simulator import create_simulator
        await asyncio.sleep(0.3)
        runner = aiohttp.web.AppRunner(create_simulator(api_key=UPSTREAM_KEY))
        await runner.setup()
        await aiohttp.web.TCPSite(runner, "127.0.0.1", port).start()
        late_upstream.append(runner)

    status, _ = await post(url, tenant_key.secret, {"model": "gpt-4o-mini", "input": "x"})
    assert status == 502
    coming = asyncio.create_task(upstream_comes_up())
    started = time.monotonic()
    status, body = await post(url, tenant_key.secret, {"model": "gpt-4o-mini", "input": "x"})
    retried_after = time.monotonic() - started
    await coming
    await late_upstream[0].cleanup()
    assert status == 200, body  # the retry reached it: nothing had been sent the first time
    assert retried_after >= 1.0  # the first attempt was refused, the second came after the pause
    assert len(await ledger(state, engine)) == 1


async def read_first_event_and_leave(url, secret, *, delay_ms, tokens, store=True):
    headers = {"Authorization": f"Bearer {secret}", "x-sim-delay-ms": str(delay_ms), "x-sim-output-tokens": str(tokens)}
    async with aiohttp.ClientSession() as http:
        reply = await http.post(url + "/v1/responses", headers=headers,
                                json={"model": "gpt-4o-mini", "input": "Hi", "stream": True, "store": store})
        await reply.content.readuntil(b"\n\n")
        reply.close()


@pytest.mark.parametrize(("policy", "store"), [("finish", True), ("cancel", True), ("cancel", False)])
async def test_client_disconnect_policy(start_proxy, tenant_key, engine, simulator, policy, store):
    url, state = await start_proxy(on_client_disconnect=policy)
    await read_first_event_and_leave(url, tenant_key.secret, delay_ms=40, tokens=20, store=store)
    deadline = time.monotonic() + 10
    while not (rows := await ledger(state, engine)) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert len(rows) == 1 == len(simulator.state.billed)
    if store:  # read to the end, or dropped and read back from the upstream: the true usage
        assert (rows[0].status, rows[0].estimated, rows[0].output_tokens) == ("completed", False, 20)
    else:  # dropped, nothing to read back, the upstream may go on: what its admission reserved
        assert (rows[0].status, rows[0].estimated) == ("usage_missing", True)
        assert rows[0].output_tokens == 16_384 and "output_worst_case" in rows[0].usage_flags


async def test_disconnected_client_drain_is_bounded(start_proxy, tenant_key, engine, simulator):
    url, state = await start_proxy(disconnect_drain_timeout=0.3)
    await read_first_event_and_leave(url, tenant_key.secret, delay_ms=100, tokens=30)
    await asyncio.sleep(1.5)  # the stream would take 3.7 s; the drain stops after about 0.3 s more
    rows = await ledger(state, engine)
    # billed before the stream would have ended: from the stored response, read back
    assert len(rows) == 1 and not rows[0].estimated and rows[0].output_tokens == 30
