"""Background responses through the proxy with the official SDK: queued, then billed once
with their true usage whether they are polled by the client, never polled, cancelled,
forgotten by the upstream, or streamed and resumed."""

import asyncio

import aiohttp
import openai
import pytest
from sqlalchemy import select, text

from billing.db.tables import background_responses, ledger_entries, quota_usage, reservations
from billing.db.tenants import update_tenant


async def entries(proxy, engine):
    await proxy.state.writer.flush(timeout=5)
    async with engine.connect() as conn:
        return {r.upstream_response_id: r for r in await conn.execute(select(ledger_entries))}


async def wait_for(predicate, timeout: float = 10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def billed_by_simulator(simulator) -> dict[str, dict]:
    return {r["id"]: r for r in simulator.state.usage_records}


async def test_background_calls_are_billed_once_with_true_usage(proxy, client, engine, simulator, tenant_key):
    await update_tenant(engine, tenant_key.tenant, monthly_budget_usd="10")  # reservations are kept
    # Never polled: the proxy's own poller finds the end.
    never = await client.responses.create(model="gpt-5", input="write an essay", background=True,
                                          extra_headers={"x-sim-background-ms": "200"})
    assert never.status == "queued" and never.usage is None
    # Polled by the client: the read that shows the end settles it.
    polled = await client.responses.create(model="gpt-5", input="and another", background=True,
                                           extra_headers={"x-sim-background-ms": "100"})
    while (polled := await client.responses.retrieve(polled.id)).status in ("queued", "in_progress"):
        await asyncio.sleep(0.05)
    assert polled.status == "completed" and polled.usage.output_tokens > 0
    # Cancelled while it runs: billed what it used.
    cancelled = await client.responses.create(model="gpt-5", input="a long job", background=True,
                                              extra_headers={"x-sim-background-ms": "60000"})
    cancelled = await client.responses.cancel(cancelled.id)
    assert cancelled.status == "cancelled"
    # Forgotten by the upstream before anyone saw it end: billed from an estimate, flagged.
    forgotten = await client.responses.create(model="gpt-5", input="forget me", background=True,
                                              extra_headers={"x-sim-background-ms": "60000"})
    async with aiohttp.ClientSession() as http:
        await http.post(simulator.make_url(f"/_sim/forget/{forgotten.id}"))

    ids = {never.id, polled.id, cancelled.id, forgotten.id}

    async def all_billed():
        return ids <= set(await entries(proxy, engine))
    await wait_for(all_billed)
    rows = await entries(proxy, engine)
    upstream = billed_by_simulator(simulator)
    for reply_id in (never.id, polled.id, cancelled.id):
        row, record = rows[reply_id], upstream[reply_id]
        assert (row.input_tokens, row.output_tokens, row.status, row.estimated) == (
            record["usage"]["input_tokens"], record["usage"]["output_tokens"], record["status"], False)
    assert rows[cancelled.id].output_tokens == 0 and rows[cancelled.id].input_tokens > 0
    assert rows[forgotten.id].estimated and "background_forgotten" in rows[forgotten.id].usage_flags
    assert len([r for r in rows.values() if r.upstream_response_id in ids]) == 4
    # Nothing is pending, no reservation is left, and the counters equal the ledger.
    async with engine.connect() as conn:
        pending = (await conn.execute(select(background_responses).where(
            background_responses.c.settled_at.is_(None)))).all()
        left = (await conn.execute(select(reservations))).all()
        spent = (await conn.execute(select(quota_usage.c.spent_usd).where(quota_usage.c.scope == "tenant"))).scalar()
    assert pending == [] and left == []
    assert spent == sum(r.charge_total for r in rows.values())
    # Settling again (a second replica, a replay) bills nothing twice.
    await asyncio.sleep(0.5)
    assert len(await entries(proxy, engine)) == len(rows)


async def test_background_stream_cut_then_resumed_event_by_event(proxy, client, engine, simulator):
    stream = await client.responses.create(model="gpt-5", input="stream me", background=True, stream=True,
                                           extra_headers={"x-sim-cut-after": "4", "x-sim-delay-ms": "20"})
    seen = [event async for event in stream]  # the upstream dropped it: the stream just ends
    assert seen[-1].type != "response.completed"
    response_id, last = seen[0].response.id, seen[-1].sequence_number
    # Resume where it stopped: each event arrives on its own, the terminal one settles the bill.
    arrivals = []
    resumed = await client.responses.retrieve(response_id, stream=True, starting_after=last,
                                              extra_headers={"x-sim-delay-ms": "50"})
    async for event in resumed:
        arrivals.append((asyncio.get_running_loop().time(), event))
    assert arrivals[0][1].sequence_number == last + 1
    assert arrivals[-1][1].type == "response.completed"
    assert arrivals[-1][0] - arrivals[0][0] > 0.3  # relayed as they came, not read whole first

    async def billed():
        return response_id in await entries(proxy, engine)
    await wait_for(billed)
    row = (await entries(proxy, engine))[response_id]
    assert row.output_tokens == arrivals[-1][1].response.usage.output_tokens and not row.estimated
    assert len(await entries(proxy, engine)) == 1


async def test_cancel_and_reads_are_for_the_owner_only(client, stranger):
    queued = await client.responses.create(model="gpt-5", input="mine", background=True,
                                           extra_headers={"x-sim-background-ms": "60000"})
    with pytest.raises(openai.NotFoundError):
        await stranger.responses.cancel(queued.id)
    with pytest.raises(openai.NotFoundError):
        await stranger.responses.retrieve(queued.id)
    assert (await client.responses.cancel(queued.id)).status == "cancelled"


async def test_a_job_deleted_before_the_poller_sees_it_end_is_billed_from_its_reply(proxy, client, engine, simulator):
    """The delete reads the response first: ended, it is billed from that reply; still
    running, it is cancelled and billed from the cancel's reply. Never an estimate."""
    ended = await client.responses.create(model="gpt-5", input="a short job " * 50, background=True,
                                          extra_headers={"x-sim-background-ms": "100"})
    running = await client.responses.create(model="gpt-5", input="a long job", background=True,
                                            extra_headers={"x-sim-background-ms": "60000"})
    await proxy.state.writer.flush(timeout=5)
    async with engine.begin() as conn:  # the poller will not look for an hour
        await conn.execute(text("UPDATE background_responses SET next_poll_at = now() + interval '1 hour'"))
    await asyncio.sleep(0.5)  # the short job has ended upstream; no one has seen it
    for job in (ended, running):
        deleted = await client.responses.delete(job.id)
        assert deleted is None or getattr(deleted, "deleted", True)

    async def both_billed():
        return {ended.id, running.id} <= set(await entries(proxy, engine))
    await wait_for(both_billed)
    billed, truth = await entries(proxy, engine), billed_by_simulator(simulator)
    for job, status in ((ended, "completed"), (running, "cancelled")):
        row = billed[job.id]
        assert row.status == status and not row.estimated, job.id
        assert (row.input_tokens, row.output_tokens) == (truth[job.id]["usage"]["input_tokens"],
                                                         truth[job.id]["usage"]["output_tokens"])
    assert billed[ended.id].output_tokens > 0
    async with engine.connect() as conn:
        assert (await conn.execute(select(background_responses.c.settled_at))).scalars().all().count(None) == 0
