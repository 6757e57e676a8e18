"""The proxy process stopped with streams in flight: SIGTERM lets them finish and exits 0;
SIGKILL loses nothing either, because the next start replays the spool. Either way every
reply the upstream generated is in the ledger exactly once."""

import asyncio
import signal
import time

import aiohttp
import orjson
import pytest
from sqlalchemy import select

from billing.db.keys import issue_key
from billing.db.tables import ledger_entries
from billing.db.tenants import create_tenant
from tests.conftest import UPSTREAM_KEY
from tests.processes import environment, free_port, serve

SLOW = {"x-sim-delay-ms": "60", "x-sim-output-tokens": "25"}  # about 32 events: 2 s a stream


@pytest.fixture
async def proxy_process(simulator, database_url, engine, tmp_path):
    env = environment(DATABASE_URL=database_url, UPSTREAM_BASE_URL=str(simulator.make_url("/v1")),
                      UPSTREAM_API_KEY=UPSTREAM_KEY, BILLING_PROXY_HOME=str(tmp_path),
                      BILLING_PROXY_SHUTDOWN_GRACE="10")
    await create_tenant(engine, "team")
    key = await issue_key(engine, "team")
    started = []

    async def start():
        port = free_port()
        process = await asyncio.to_thread(serve, env, port)
        started.append(process)
        return f"http://127.0.0.1:{port}", process

    yield start, key.secret, tmp_path / "spool"
    for process in started:
        await asyncio.to_thread(process.stop, signal.SIGKILL)


async def open_streams(http, url, secret, count):
    """Start `count` slow streams and read each one's first event."""
    headers = {"Authorization": f"Bearer {secret}", **SLOW}
    replies = []
    for i in range(count):
        reply = await http.post(url + "/v1/responses", headers=headers,
                                data=orjson.dumps({"model": "gpt-4o-mini", "input": f"stream {i}", "stream": True}))
        assert reply.status == 200
        await reply.content.readuntil(b"\n\n")
        replies.append(reply)
    return replies


async def rows_when(engine, count, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(ledger_entries))).all()
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.1)


async def test_sigterm_lets_streams_finish_and_exits_0(proxy_process, engine, simulator):
    start, secret, spool = proxy_process
    url, process = await start()
    async with aiohttp.ClientSession() as http:
        replies = await open_streams(http, url, secret, 4)
        process.popen.send_signal(signal.SIGTERM)
        bodies = await asyncio.gather(*[reply.read() for reply in replies])
        exit_code = await asyncio.to_thread(process.popen.wait, 30)
    assert exit_code == 0, process.output()
    assert all(b"event: response.completed" in body for body in bodies)
    rows = await rows_when(engine, 4)
    assert sorted(r.upstream_response_id for r in rows) == sorted(simulator.state.billed)
    assert len(rows) == 4 and all(r.status == "completed" and r.output_tokens == 25 for r in rows)
    assert list(spool.glob("*.spool")) == []  # flushed and cleaned up before exit


async def test_sigkill_mid_stream_loses_nothing_and_bills_nothing_twice(proxy_process, engine, simulator):
    start, secret, spool = proxy_process
    url, process = await start()
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as http:
        for i in range(3):  # finished calls whose entries may or may not have reached the database
            async with http.post(url + "/v1/responses", headers=headers,
                                 data=orjson.dumps({"model": "gpt-4o-mini", "input": f"done {i}"})) as reply:
                assert reply.status == 200
        replies = await open_streams(http, url, secret, 4)
        process.popen.send_signal(signal.SIGKILL)
        await asyncio.to_thread(process.popen.wait, 10)
        for reply in replies:
            with pytest.raises(aiohttp.ClientError):
                await reply.read()
    assert list(spool.glob("*.spool")), "the killed process left its spool behind"

    await start()  # the next start replays the dead process's spool
    rows = await rows_when(engine, 7)
    assert len(rows) == len(simulator.state.billed) == 7
    finished = [r for r in rows if r.status == "completed"]
    interrupted = [r for r in rows if r.status == "interrupted"]
    assert len(finished) == 3 and not any(r.estimated for r in finished)
    assert len(interrupted) == 4 and all(r.estimated and r.stream and r.input_tokens > 0 for r in interrupted)
    # Each entry names the reply the upstream generated (streams from their spooled progress): one each.
    assert sorted(r.upstream_response_id for r in rows) == sorted(simulator.state.billed)

    await start()  # a third start finds nothing left to replay
    await asyncio.sleep(1)
    assert len(await rows_when(engine, 8, timeout=1)) == 7


async def test_sigkill_after_the_client_has_its_answer_bills_it_exactly(proxy_process, engine, simulator):
    """The terminal event reaches the client only once its entry is spooled: a kill between
    the two (here the upstream holds the stream open after its last event) replays the
    exact usage, not an estimate."""
    start, secret, spool = proxy_process
    url, process = await start()
    headers = {"Authorization": f"Bearer {secret}", "x-sim-output-tokens": "25", "x-sim-hold-after-end-ms": "30000"}
    async with aiohttp.ClientSession() as http:
        replies = []
        for i in range(3):
            reply = await http.post(url + "/v1/responses", headers=headers,
                                    data=orjson.dumps({"model": "gpt-4o-mini", "input": f"answer {i}", "stream": True}))
            assert reply.status == 200
            await reply.content.readuntil(b"event: response.completed\n")  # the client has its answer
            replies.append(reply)
        process.popen.send_signal(signal.SIGKILL)
        await asyncio.to_thread(process.popen.wait, 10)
        for reply in replies:
            reply.close()

    await start()
    rows = await rows_when(engine, 3)
    assert len(rows) == len(simulator.state.billed) == 3
    billed = {record["id"]: record["usage"] for record in simulator.state.usage_records}
    for row in rows:
        assert row.status == "completed" and not row.estimated
        assert (row.input_tokens, row.output_tokens) == (billed[row.upstream_response_id]["input_tokens"],
                                                         billed[row.upstream_response_id]["output_tokens"])
