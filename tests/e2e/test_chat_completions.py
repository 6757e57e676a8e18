"""Chat Completions through the proxy with the official SDK: billed from the upstream's
usage, and the client sees exactly the stream it asked for."""

from decimal import Decimal

from sqlalchemy import select

from billing.db.tables import ledger_entries


async def rows(proxy, engine):
    await proxy.state.writer.flush(timeout=5)
    async with engine.connect() as conn:
        return (await conn.execute(select(ledger_entries).order_by(ledger_entries.c.started_at))).all()


async def test_json_chat_completion_is_billed_from_its_usage(proxy, client, engine):
    reply = await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello!"}])
    assert reply.object == "chat.completion" and reply.choices[0].message.content
    [row] = await rows(proxy, engine)
    assert (row.endpoint, row.upstream_response_id) == ("chat.completions", reply.id)
    assert (row.input_tokens, row.output_tokens) == (reply.usage.prompt_tokens, reply.usage.completion_tokens)
    assert row.cost_total == (reply.usage.prompt_tokens * Decimal("0.15")
                              + reply.usage.completion_tokens * Decimal("0.60")) / Decimal(10**6)


async def test_stream_without_include_usage_is_billed_and_shows_no_usage_chunk(proxy, client, engine, simulator):
    stream = await client.chat.completions.create(model="gpt-4o-mini", stream=True,
                                                  messages=[{"role": "user", "content": "Hello!"}])
    chunks = [chunk async for chunk in stream]
    assert chunks and all(chunk.choices for chunk in chunks)  # no usage-only chunk reached the client
    assert simulator.state.requests[-1]["body"]["stream_options"] == {"include_usage": True}
    [row] = await rows(proxy, engine)
    assert row.stream is True and row.output_tokens == 24 and row.upstream_response_id == chunks[0].id


async def test_stream_with_include_usage_passes_the_usage_chunk_through(proxy, client, engine):
    stream = await client.chat.completions.create(model="gpt-4o-mini", stream=True,
                                                  stream_options={"include_usage": True},
                                                  messages=[{"role": "user", "content": "Hello!"}])
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 24
    [row] = await rows(proxy, engine)
    assert row.input_tokens == chunks[-1].usage.prompt_tokens
