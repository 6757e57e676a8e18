"""Streams that end without usage are recorded from an estimate, flagged, and shown apart in
reports: never billed as zero silently, never dropped."""

from datetime import datetime, timezone

import aiohttp
from sqlalchemy import select

from billing.db.reports import monthly_report
from billing.db.tables import ledger_entries, reservations


async def relay(proxy, secret, headers):
    async with aiohttp.ClientSession() as http:
        async with http.post(proxy.url + "/v1/responses", json={"model": "gpt-4o-mini", "input": "x" * 400,
                                                                "stream": True},
                             headers={"Authorization": f"Bearer {secret}", **headers}) as reply:
            assert reply.status == 200
            try:
                return await reply.read()
            except aiohttp.ClientPayloadError:  # the proxy passes the cut on
                return b""


async def test_error_event_and_cut_stream_are_recorded_as_estimated(proxy, engine, tenant_key):
    # 24 words; 7 events come before the first text delta, so 10 events carry 3 words
    error_body = await relay(proxy, tenant_key.secret, {"x-sim-error-after": "10"})
    assert b"event: error" in error_body and b"response.completed" not in error_body
    await relay(proxy, tenant_key.secret, {"x-sim-cut-after": "12"})
    normal = await relay(proxy, tenant_key.secret, {})
    assert b"response.completed" in normal

    await proxy.state.writer.flush(timeout=5)
    async with engine.connect() as conn:
        rows = (await conn.execute(select(ledger_entries).order_by(ledger_entries.c.started_at))).all()
        assert (await conn.execute(select(reservations))).all() == []
    errored, cut, completed = rows
    for row in (errored, cut):
        assert row.status == "usage_missing" and row.estimated and "estimated" in row.usage_flags
        assert row.input_tokens > 100 and row.output_tokens > 0 and row.cost_total > 0
    assert errored.output_tokens < completed.output_tokens and cut.output_tokens < completed.output_tokens
    assert not completed.estimated and completed.status == "completed"

    report = await monthly_report(engine, datetime.now(timezone.utc).strftime("%Y-%m"), by=("tenant",))
    [row] = report.rows
    assert row.requests == 3 and row.estimated_requests == 2
    assert row.estimated_charge == errored.charge_total + cut.charge_total
