"""Attribution on every entry, through the proxy with the official SDK: one key used by
three end users (`safety_identifier`, `user`, the header) across two projects (`metadata`,
the header); a bad value is a 400 naming it and goes nowhere; a background response keeps
its attribution until it is billed; an operator may keep end users as a keyed hash."""

import asyncio
import hashlib
import hmac
from dataclasses import replace

import openai
import pytest
from sqlalchemy import select

from billing.db.tables import ledger_entries


async def entries(proxy, engine, count):
    for _ in range(200):
        await proxy.state.writer.flush(timeout=5)
        async with engine.connect() as conn:
            rows = (await conn.execute(select(ledger_entries).order_by(ledger_entries.c.started_at))).all()
        if len(rows) >= count:
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(rows)} entries, not {count}")


async def test_three_users_and_two_projects_on_one_key(proxy, client, engine):
    await client.responses.create(model="gpt-5-mini", input="hi", safety_identifier="user-a",
                                  metadata={"project": "search"})
    await client.chat.completions.create(model="gpt-5-mini", messages=[{"role": "user", "content": "hi"}],
                                         user="user-b", metadata={"project": "search"}, store=True)
    await client.responses.create(model="gpt-5-mini", input="hi",
                                  extra_headers={"X-Billing-User": "user-c", "X-Billing-Tags": "project=ads,env=prod"})
    await client.embeddings.create(model="text-embedding-3-small", input="hi",
                                   extra_headers={"X-Billing-User": "user-c"})
    await client.responses.create(model="gpt-5-mini", input="nobody's")
    rows = await entries(proxy, engine, 5)
    assert [(r.end_user, r.tags) for r in rows] == [
        ("user-a", {"project": "search"}), ("user-b", {"project": "search"}),
        ("user-c", {"env": "prod", "project": "ads"}), ("user-c", {}), (None, {})]


@pytest.mark.parametrize(("kwargs", "param"), [
    ({"safety_identifier": "x" * 300}, "safety_identifier"),
    ({"metadata": {"project": "x" * 600}}, "metadata"),
    ({"extra_headers": {"X-Billing-Tags": "project"}}, "X-Billing-Tags"),
    ({"extra_headers": {"X-Billing-User": "x" * 300}}, "X-Billing-User"),
])
async def test_a_bad_value_is_a_400_naming_it(client, simulator, kwargs, param):
    with pytest.raises(openai.BadRequestError) as refused:
        await client.responses.create(model="gpt-5-mini", input="hi", **kwargs)
    assert refused.value.body["param"] == param
    assert simulator.state.usage_records == []  # it went nowhere


async def test_a_background_response_is_billed_with_its_attribution(proxy, client, engine):
    queued = await client.responses.create(model="gpt-5-mini", input="long job", background=True,
                                           safety_identifier="user-a", metadata={"project": "batch"},
                                           extra_headers={"x-sim-background-ms": "100"})
    [row] = await entries(proxy, engine, 1)
    assert row.upstream_response_id == queued.id
    assert (row.end_user, row.tags) == ("user-a", {"project": "batch"})


async def test_end_users_kept_as_a_keyed_hash_and_only_the_kept_tags(aiohttp_server, engine, database_url,
                                                                      proxy_settings, tenant_key):
    from proxy.app import create_app
    from tests.conftest import RunningProxy

    settings = replace(proxy_settings, user_hash_key="k" * 32, kept_tags=("project",))
    server = await aiohttp_server(create_app(settings, database_url))
    proxy = RunningProxy(str(server.make_url("")).rstrip("/"), server.app, settings)
    async with openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=tenant_key.secret, max_retries=0) as client:
        await client.responses.create(model="gpt-5-mini", input="hi", safety_identifier="alice@example.com",
                                      metadata={"project": "search", "session": "s-1"})
    [row] = await entries(proxy, engine, 1)
    assert row.end_user == hmac.new(b"k" * 32, b"alice@example.com", hashlib.sha256).hexdigest()
    assert row.tags == {"project": "search"}
