"""Streams that end without usage are recorded from an estimate, flagged, and shown apart in
reports: never billed as zero silently, never dropped."""

import asyncio
from datetime import datetime, timezone

import aiohttp
from sqlalchemy import select

from billing.db.reports import monthly_report
from billing.db.tables import ledger_entries, reservations


async def relay(proxy, secret, headers, **fields):
    async with aiohttp.ClientSession() as http:
        async with http.post(proxy.url + "/v1/responses", json={"model": "gpt-4o-mini", "input": "x" * 400,
                                                                "stream": True, **fields},
                             headers={"Authorization": f"Bearer {secret}", **headers}) as reply:
            assert reply.status == 200
            try:
                return await reply.read()
            except aiohttp.ClientPayloadError:  # the proxy passes the cut on
                return b""


async def entries(proxy, engine, count):
    for _ in range(200):  # a stream read back from the upstream is billed when the poller reads it
        await proxy.state.writer.flush(timeout=5)
        async with engine.connect() as conn:
            rows = (await conn.execute(select(ledger_entries).order_by(ledger_entries.c.started_at))).all()
        if len(rows) == count:
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(rows)} entries, not {count}")


async def test_error_event_and_cut_stream_are_recorded_as_estimated(proxy, engine, tenant_key, simulator):
    # 24 words; 7 events come before the first text delta, so 10 events carry 3 words
    error_body = await relay(proxy, tenant_key.secret, {"x-sim-error-after": "10"})
    assert b"event: error" in error_body and b"response.completed" not in error_body
    await relay(proxy, tenant_key.secret, {"x-sim-cut-after": "12"}, store=False)
    await relay(proxy, tenant_key.secret, {"x-sim-cut-after": "12"})  # stored: read back
    normal = await relay(proxy, tenant_key.secret, {})
    assert b"response.completed" in normal

    errored, cut, read_back, completed = await entries(proxy, engine, 4)
    async with engine.connect() as conn:
        assert (await conn.execute(select(reservations))).all() == []
    for row in (errored, cut):
        assert row.status == "usage_missing" and row.estimated and "estimated" in row.usage_flags
        assert row.input_tokens > 100 and row.output_tokens > 0 and row.cost_total > 0
    # the upstream said it failed: what it showed; the cut one may have gone on: its output cap
    assert errored.output_tokens < completed.output_tokens < cut.output_tokens == 16_384
    assert "output_worst_case" in cut.usage_flags
    records = {r["id"]: r for r in simulator.state.usage_records}
    for row in (read_back, completed):
        assert not row.estimated and row.status == "completed"
        assert row.output_tokens == records[row.upstream_response_id]["usage"]["output_tokens"]

    report = await monthly_report(engine, datetime.now(timezone.utc).strftime("%Y-%m"), by=("tenant",))
    [row] = report.rows
    assert row.requests == 4 and row.estimated_requests == 2
    assert row.estimated_charge == errored.charge_total + cut.charge_total


async def stream_raw(proxy, secret, path: str, body: dict, headers: dict) -> bytes:
    async with aiohttp.ClientSession() as http:
        async with http.post(proxy.url + path, json=body,
                             headers={"Authorization": f"Bearer {secret}", **headers}) as reply:
            assert reply.status == 200
            try:
                return await reply.read()
            except aiohttp.ClientPayloadError:
                return b""


async def test_cut_streams_of_every_framing_stay_estimated(proxy, engine, tenant_key, simulator):
    secret = tenant_key.secret
    responses = {"model": "gpt-4o-mini", "input": "x" * 400, "stream": True}
    # data-only framing (no `event:` lines), failing after 12 frames: its deltas still count
    data_only = await stream_raw(proxy, secret, "/v1/responses", responses,
                                 {"x-sim-framing": "data-only", "x-sim-error-after": "12"})
    assert b"event:" not in data_only and b"response.output_text.delta" in data_only
    # BytePlus: thinking streamed as reasoning deltas, then a `data: {"error": ...}` frame
    seed = {"model": "seed-1-6-250915", "input": "x" * 400, "stream": True}
    errored = await stream_raw(proxy, secret, "/v1/responses", seed, {"x-sim-error-after": "20"})
    assert b'data: {"error"' in errored
    # chat with a running total in every chunk, cut before [DONE]: the running total is a floor
    chat = {"model": "seed-1-6-250915", "messages": [{"role": "user", "content": "x" * 400}], "stream": True,
            "stream_options": {"chunk_include_usage": True}}
    running_cut = await stream_raw(proxy, secret, "/v1/chat/completions", chat, {"x-sim-cut-after": "10"})
    assert b'"completion_tokens":9' in running_cut and b"[DONE]" not in running_cut
    # the same stream whole: the last running total is the usage
    whole = await stream_raw(proxy, secret, "/v1/chat/completions", chat, {})
    assert whole.rstrip().endswith(b"data: [DONE]")

    await proxy.state.writer.flush(timeout=5)
    async with engine.connect() as conn:
        rows = (await conn.execute(select(ledger_entries).order_by(ledger_entries.c.started_at))).all()
    cut_data_only, seed_error, chat_cut, chat_whole = rows
    for row in (cut_data_only, seed_error, chat_cut):
        assert row.status == "usage_missing" and row.estimated and row.output_tokens > 0
    assert seed_error.output_tokens >= 20  # reasoning deltas counted (about 80 bytes of them before the error)
    assert chat_cut.output_tokens >= 9 and chat_cut.input_tokens >= 100
    records = {r["id"]: r for r in simulator.state.usage_records}
    assert (chat_whole.status, chat_whole.estimated) == ("completed", False)
    assert chat_whole.output_tokens == records[chat_whole.upstream_response_id]["usage"]["completion_tokens"]
