"""The database goes away under load: a real PostgreSQL server of the test's own is stopped
(as a crash would) while the official SDK keeps calling through the proxy, then started
again. Every reply the upstream generated ends up in the ledger exactly once."""

import asyncio
import time
from dataclasses import replace
from decimal import Decimal

import aiohttp
import openai
import pytest
from sqlalchemy import func, select

from billing.db.engine import make_engine
from billing.db.keys import issue_key
from billing.db.migrate import upgrade_to_head
from billing.db.quota import counters
from billing.db.tables import ledger_entries
from billing.db.tenants import create_tenant
from billing.quota import period_start
from proxy.app import create_app
from proxy.gateway.state import STATE
from tests.conftest import METRICS_AUTH
from tests.stoppable_postgres import StoppablePostgres

D = Decimal


@pytest.fixture(scope="module")
def own_postgres(tmp_path_factory):
    postgres = StoppablePostgres(tmp_path_factory.mktemp("stoppable-pg"))
    upgrade_to_head(postgres.url)
    yield postgres
    postgres.close()


@pytest.fixture
async def outage_proxy(own_postgres, aiohttp_server, proxy_settings, request):
    own_postgres.start()
    engine = make_engine(own_postgres.url, pool_size=2)
    async with engine.begin() as conn:
        await conn.exec_driver_sql("TRUNCATE ledger_entries, api_key_secrets, api_keys, tenants, quota_usage, "
                                   "reservations, alerts, ledger_daily, ledger_daily_users, ledger_daily_tags, "
                                   "response_owners RESTART IDENTITY CASCADE")
    policy = getattr(request, "param", "serve")
    settings = replace(proxy_settings, outage_admission=policy, sync_interval=0.2)
    app = create_app(settings, own_postgres.url)
    server = await aiohttp_server(app)
    yield str(server.make_url("")).rstrip("/"), app[STATE], engine
    own_postgres.start()
    await engine.dispose()


async def ledger(engine) -> list:
    await engine.dispose()  # the test's own pooled connections died with the server
    async with engine.connect() as conn:
        return (await conn.execute(select(ledger_entries))).all()


async def call(client: openai.AsyncOpenAI, i: int) -> str:
    """One call, streamed or not; returns the upstream's response id."""
    if i % 2:
        async with await client.responses.create(model="gpt-4o-mini", input=f"call {i}", stream=True,
                                                 extra_headers={"x-sim-output-tokens": "8",
                                                                "x-sim-delay-ms": "5"}) as stream:
            events = [event async for event in stream]
        assert events[-1].type == "response.completed"
        return events[-1].response.id
    reply = await client.responses.create(model="gpt-4o-mini", input=f"call {i}",
                                          extra_headers={"x-sim-output-tokens": "8"})
    return reply.id


async def test_database_stopped_and_restarted_under_load(outage_proxy, own_postgres, simulator):
    url, state, engine = outage_proxy
    # One tenant with a budget (admitted from the last known quota state while the database
    # is down), one without limits.
    await create_tenant(engine, "limited", monthly_budget_usd=D("10"))
    await create_tenant(engine, "open")
    keys = [await issue_key(engine, "limited"), await issue_key(engine, "open")]
    clients = [openai.AsyncOpenAI(base_url=url + "/v1", api_key=k.secret, max_retries=0) for k in keys]
    for client in clients:  # the proxy learns each tenant's quota state while the database is up
        await call(client, 0)

    seen_ids, failures, stop = [], [], asyncio.Event()

    async def load(worker: int) -> None:
        i = 0
        while not stop.is_set():
            try:
                seen_ids.append(await call(clients[worker % 2], i))
            except Exception as error:  # noqa: BLE001 - every failure is reported below
                failures.append(repr(error))
            i += 1

    workers = [asyncio.create_task(load(w)) for w in range(8)]
    await asyncio.sleep(1.5)
    await asyncio.to_thread(own_postgres.stop)
    stopped_at_count = len(seen_ids)
    observed = {}
    async with aiohttp.ClientSession() as http:
        deadline = time.monotonic() + 10
        while not observed.get("spooled") and time.monotonic() < deadline:
            async with http.get(url + "/readyz") as reply:
                body = await reply.json()
                if reply.status == 503 and body["ledger_backlog"] > 0:
                    observed["readyz"] = (reply.status, body)
            async with http.get(url + "/metrics", headers=METRICS_AUTH) as reply:
                text = await reply.text()
                if "billing_proxy_database_up 0.0" in text and "billing_proxy_spool_entries 0.0" not in text:
                    observed["spooled"] = True
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        served_during_outage = len(seen_ids) - stopped_at_count
        await asyncio.to_thread(own_postgres.start)
        await asyncio.sleep(1.5)
        stop.set()
        await asyncio.gather(*workers)
        await state.writer.flush(timeout=30)
        async with http.get(url + "/readyz") as reply:
            assert reply.status == 200 and (await reply.json())["ledger_backlog"] == 0
    for client in clients:
        await client.close()

    assert failures == []
    assert observed.get("spooled"), "metrics never showed the database down with entries spooled"
    assert observed["readyz"][1]["database"] == "unreachable"
    assert served_during_outage > 20, "calls did not go on while the database was down"
    rows = await ledger(engine)
    billed = simulator.state.billed
    assert len(rows) == len(billed) == len(seen_ids) + 2
    assert sorted(r.upstream_response_id for r in rows) == sorted(billed)  # each exactly once
    assert all(r.status == "completed" and not r.estimated for r in rows)
    # The quota counters settled every entry, the spooled ones included, exactly once.
    limited = keys[0]
    await engine.dispose()
    spent = (await counters(engine, "key", limited.id, period_start(rows[0].started_at))).spent_usd
    assert spent == sum(r.charge_total for r in rows if r.key_id == limited.id)


@pytest.mark.parametrize("outage_proxy", ["refuse"], indirect=True)
async def test_refuse_policy_answers_503_for_limited_tenants_only(outage_proxy, own_postgres, simulator):
    url, state, engine = outage_proxy
    await create_tenant(engine, "limited", monthly_budget_usd=D("10"))
    await create_tenant(engine, "open")
    limited, open_key = await issue_key(engine, "limited"), await issue_key(engine, "open")
    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key=limited.secret, max_retries=0) as client_l, \
            openai.AsyncOpenAI(base_url=url + "/v1", api_key=open_key.secret, max_retries=0) as client_o:
        await call(client_l, 0)
        await asyncio.to_thread(own_postgres.stop)
        with pytest.raises(openai.APIStatusError) as error:
            await call(client_l, 2)
        assert error.value.status_code == 503 and error.value.body["code"] == "quota_unavailable"
        assert await call(client_o, 4)  # no limits: nothing to ask the database
        await asyncio.to_thread(own_postgres.start)
        await state.writer.flush(timeout=30)
    assert sorted(r.upstream_response_id for r in await ledger(engine)) == sorted(simulator.state.billed)


async def test_serve_policy_refuses_what_the_last_known_budget_cannot_cover(outage_proxy, own_postgres):
    url, state, engine = outage_proxy
    # gpt-4o-mini at 0.15 / 0.60 per 1M: max_output_tokens 1000 reserves about 0.0006 USD.
    await create_tenant(engine, "tight", monthly_budget_usd=D("0.002"))
    key = await issue_key(engine, "tight")
    body = {"model": "gpt-4o-mini", "input": "x", "max_output_tokens": 1000}
    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key=key.secret, max_retries=0) as client:
        await client.responses.create(**body)  # the database answers: about 0.0014 USD left after it
        await asyncio.to_thread(own_postgres.stop)

        async def attempt():
            try:
                await client.responses.create(**body, extra_headers={"x-sim-delay-ms": "300"})
                return 200
            except openai.APIStatusError as error:
                return error.status_code, error.body["code"]

        statuses = await asyncio.gather(*[attempt() for _ in range(6)])  # side by side: worst cases add up
        await asyncio.to_thread(own_postgres.start)
        await state.writer.flush(timeout=30)
    assert statuses.count(200) == 2, statuses  # 2 x 0.0006 fit in 0.0014, a third does not
    assert statuses.count((429, "insufficient_quota")) == 4
    admitted = 1 + statuses.count(200)
    await engine.dispose()
    async with engine.connect() as conn:
        charged = (await conn.execute(select(func.sum(ledger_entries.c.charge_total)))).scalar_one()
        assert (await conn.execute(select(func.count()).select_from(ledger_entries))).scalar_one() == admitted
    assert charged <= D("0.002")


async def test_every_endpoint_that_needs_the_database_answers_503_while_it_is_down(
        own_postgres, aiohttp_server, proxy_settings, simulator):
    """Not a 500: a 503 with `Retry-After`, which the SDKs retry, on the gateway, self-service
    and admin endpoints alike."""
    from tests.e2e.test_admin_api import ADMIN_TOKEN
    own_postgres.start()
    engine = make_engine(own_postgres.url, pool_size=2)
    async with engine.begin() as conn:
        await conn.exec_driver_sql("TRUNCATE ledger_entries, api_key_secrets, api_keys, tenants, quota_usage, "
                                   "reservations, alerts, ledger_daily, ledger_daily_users, ledger_daily_tags, "
                                   "response_owners RESTART IDENTITY CASCADE")
    await create_tenant(engine, "team")
    key = await issue_key(engine, "team")
    app = create_app(replace(proxy_settings, admin_token=ADMIN_TOKEN, sync_interval=0.2), own_postgres.url)
    server = await aiohttp_server(app)
    url = str(server.make_url("")).rstrip("/")
    team = {"Authorization": f"Bearer {key.secret}", "Content-Type": "application/json"}
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    unknown = "resp_" + "0" * 48
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(url + "/v1/usage", headers=team) as reply:
                assert reply.status == 200  # the key is known before the database goes away
            await asyncio.to_thread(own_postgres.stop)
            attempts = [
                ("GET", f"/v1/responses/{unknown}", team, None),
                ("POST", "/v1/responses", team, {"model": "gpt-4o-mini", "input": "x", "previous_response_id": unknown}),
                ("GET", "/v1/usage", team, None),
                ("POST", "/v1/conversations", team, {}),
                ("GET", "/admin/tenants", admin, None),
                ("GET", "/admin/dashboard", admin, None),
            ]
            answers = []
            for method, path, headers, body in attempts:
                async with http.request(method, url + path, headers=headers, json=body) as reply:
                    answers.append((path, reply.status, reply.headers.get("Retry-After"),
                                    (await reply.json(content_type=None))["error"]["code"]))
    finally:
        await asyncio.to_thread(own_postgres.start)
        await engine.dispose()
    assert answers == [(path, 503, "2", "database_unavailable") for _, path, _, _ in attempts]
